"""Dwolla webhooks under load, end to end: the Dwolla simulator sends signed failed-transfer events at a
steady rate (open loop) to the real `POST /api/webhooks/dwolla` of `supportlens serve` on its own
PostgreSQL database, with the app's in-process task worker making the cases (it reads each transfer and
customer back from the simulator, as from Dwolla).

Targets: 1,000 events a minute for 2 minutes; every event stored once and every case made once (counted
in the database after the queue has drained, then again after the simulator re-sends a sample of the
delivered events, which must be acknowledged without a second case); p99 answer <= 50 ms (timed by the
sender, per attempt). With `--target URL --secret S` the same load goes to another deployment, and the
counts in its database are not checked here.

    .venv/bin/python bench/dwolla_webhooks.py [--rate 1000] [--minutes 2] [--replays 200]
        [--target URL --secret S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import create_db, drop_db, free_port  # noqa: E402
from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app  # noqa: E402
from supportlens_sandbox.dwolla.webhooks import SIGNATURE_HEADER, sign  # noqa: E402
from supportlens_sandbox.knobs import Knobs  # noqa: E402
from supportlens_sandbox.world import demo_world  # noqa: E402

P99_TARGET_MS = 50.0
DRAIN_TIMEOUT_S = 300


def start_in_thread(app: Any, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the Dwolla simulator did not start")
        time.sleep(0.05)
    return server


async def prepare_db() -> str:
    from supportlens.db import migrate

    url = await create_db()
    await migrate.upgrade_async(url)
    return url


def start_app(
    url: str,
    port: int,
    dwolla_url: str,
    secret: str,
    *,
    in_process: bool,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """`supportlens serve` on its own database, and its task worker: inside the web process (as the
    default `serve` runs), or a dedicated `supportlens worker` process. Started processes go in `procs`."""
    env = {
        **os.environ,
        "SUPPORTLENS_DATABASE_URL": url,
        "SUPPORTLENS_ENVIRONMENT": "development",
        "SUPPORTLENS_LOG_LEVEL": "WARNING",
        "SUPPORTLENS_RUN_SCHEDULE": "false",  # the periodic schedule is not what is measured
        "SUPPORTLENS_DWOLLA_BASE_URL": dwolla_url,
        "SUPPORTLENS_DWOLLA_KEY": DWOLLA_KEY,
        "SUPPORTLENS_DWOLLA_SECRET": DWOLLA_SECRET,
        "SUPPORTLENS_DWOLLA_WEBHOOK_SECRET": secret,
        "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("SUPPORTLENS_REDIS_URL", None)
    if not in_process:
        env["SUPPORTLENS_RUN_WORKER"] = "false"
    command = [sys.executable, "-m", "supportlens.cli", "serve", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(command, env=env, cwd=str(ROOT))
    if not in_process:  # a dedicated `supportlens worker` process, as a production deployment runs it
        worker_env = {**env, "SUPPORTLENS_DATABASE_POOL_SIZE": "4"}
        command = [sys.executable, "-m", "supportlens.cli", "worker", "--metrics-port", str(free_port())]
        procs.append(subprocess.Popen(command, env=worker_env, cwd=str(ROOT)))
    procs.append(proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise SystemExit("the app did not start")


async def counts(url: str) -> dict[str, int]:
    """What the app's database holds: events, cases, distinct transfers, waiting jobs."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM dwolla_webhook_events),"
                        " (SELECT count(*) FROM dwolla_webhook_events WHERE processed_at IS NULL),"
                        " (SELECT count(*) FROM attention_cases),"
                        " (SELECT count(DISTINCT transfer_id) FROM attention_cases),"
                        " (SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'attention'"
                        "   AND status IN ('todo', 'doing')),"
                        " (SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'attention'"
                        "   AND status = 'failed')"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    keys = ("events", "unprocessed", "cases", "transfers", "jobs_waiting", "jobs_failed")
    return dict(zip(keys, (int(v) for v in row), strict=True))


async def drained(url: str, expected_events: int) -> dict[str, int]:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        now = await counts(url)
        if now["events"] >= expected_events and now["jobs_waiting"] == 0:
            return now
        if time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


def server_side(base: str) -> str:
    """The app's own timing of the webhook route (its /metrics histogram): from the request's arrival at
    the app to its answer, without the sender's or the network's queueing. Bucket bounds, not exact."""
    text = httpx2.get(f"{base}/metrics", timeout=10).text
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if (
            line.startswith("supportlens_http_request_duration_seconds_bucket{")
            and 'route="/api/webhooks/dwolla"' in line
            and 'method="POST"' in line
            and 'status="200"' in line
        ):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets:
        return "no timing found in /metrics"
    buckets.sort()
    total = buckets[-1][1]
    within = next((n for le, n in buckets if le == 0.05), 0.0)
    p99 = next(le for le, n in buckets if n >= 0.99 * total)
    return (
        f"{within / total:.1%} of {total:.0f} answered within 50 ms; p99 <= {p99 * 1000:g} ms (bucket bound)"
    )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


async def drive(
    sim_url: str, rate_per_minute: int, minutes: float, customers: list[str]
) -> tuple[int, float]:
    """Ask the simulator for one failed transfer every 60/rate seconds, on schedule (open loop)."""
    interval = 60.0 / rate_per_minute
    total = round(rate_per_minute * minutes)
    late = 0.0
    async with httpx2.AsyncClient(base_url=sim_url, timeout=10) as http:
        started = time.perf_counter()
        pending: set[asyncio.Task[Any]] = set()
        for n in range(total):
            due = started + n * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                late = max(late, -wait)
            body = {
                "customerId": customers[n % len(customers)],
                "amount": f"{10 + n % 500}.00",
                "code": "R01",
            }
            task = asyncio.create_task(http.post("/__sandbox/transfer-failures", json=body))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    return total, late


async def replay(target: str, secret: str, bodies: list[str]) -> list[int]:
    """Send delivered events again, as Dwolla does when it missed our 200: each must answer 200."""
    async with httpx2.AsyncClient(timeout=10) as http:
        answers = []
        for raw in bodies:
            data = raw.encode()
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, data)}
            answers.append((await http.post(target, content=data, headers=headers)).status_code)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per minute")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--replays", type=int, default=200, help="delivered events sent a second time")
    parser.add_argument(
        "--worker", choices=("separate", "in-process"), default="separate", help="where the task worker runs"
    )
    parser.add_argument("--target", help="another deployment's webhook URL (default: the app started here)")
    parser.add_argument("--secret", help="its webhook secret (with --target)")
    args = parser.parse_args()
    if bool(args.target) != bool(args.secret):
        raise SystemExit("--target and --secret go together")

    world = demo_world()
    customers = [
        c.dwolla_id
        for c in world.dwolla_customers
        if c.dwolla_id and any(fs.type == "bank" and not fs.removed for fs in c.funding_sources)
    ]
    sim_port, api_port = free_port(), free_port()
    sim = create_dwolla_app(world, Knobs(webhook_retry_scale=0.001))  # a retry after 0.9 s, not 15 min
    start_in_thread(sim, sim_port)  # the failures asked for, and the deliveries being timed
    # The app's reads (transfers, customers) reach the same simulator through a second server: its own
    # event loop, so they do not queue in front of the deliveries whose answers are timed.
    start_in_thread(sim, api_port)
    sim_url = f"http://127.0.0.1:{sim_port}"
    procs: list[subprocess.Popen[bytes]] = []
    db_url = None
    if args.target:
        target, secret = args.target, args.secret
    else:
        secret = secrets.token_urlsafe(24)
        db_url = asyncio.run(prepare_db())
        port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        start_app(db_url, port, api_url, secret, in_process=args.worker == "in-process", procs=procs)
        target = f"http://127.0.0.1:{port}/api/webhooks/dwolla"
    try:
        hub = sim.state.webhooks
        hub.subscribe(target, secret)
        where = "" if args.target else f" (task worker: {args.worker})"
        print(
            f"sending {args.rate} failed-transfer events a minute for {args.minutes:g} min to {target}{where}"
        )
        total, late = asyncio.run(drive(sim_url, args.rate, args.minutes, customers))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            len(hub.deliveries) < total or any(d.state == "pending" for d in hub.deliveries)
        ):
            time.sleep(0.2)
        deliveries = list(hub.deliveries)
        delivered = sum(d.state == "delivered" for d in deliveries)
        attempts = [a for d in deliveries for a in d.attempts]
        answered = [a.seconds * 1000 for a in attempts if a.status is not None]
        failed_attempts = sum(1 for a in attempts if a.status is None or not 200 <= a.status < 300)
        ok = delivered == total
        p50, p95, p99 = (percentile(answered, p) for p in (50, 95, 99)) if answered else (float("nan"),) * 3
        mean = statistics.fmean(answered) if answered else float("nan")
        print(f"events sent: {total} (the sender fell behind its schedule by at most {late * 1000:.0f} ms)")
        print(f"delivered: {delivered} of {total}; failed attempts (retried): {failed_attempts}")
        print(
            f"answer time over {len(answered)} attempts: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            f"p99 {p99:.1f} ms (target p99 <= {P99_TARGET_MS:.0f} ms), mean {mean:.1f} ms"
        )
        ok = ok and p99 <= P99_TARGET_MS
        if db_url is not None:
            print(f"the app's own timing: {server_side(target.rsplit('/api/', 1)[0])}")
            started = time.monotonic()
            after = asyncio.run(drained(db_url, total))
            print(
                f"queue drained {time.monotonic() - started:.1f} s after the last delivery: "
                f"{json.dumps(after)}"
            )
            sample = [d.body for d in deliveries if d.state == "delivered"][: args.replays]
            statuses = asyncio.run(replay(target, secret, sample))
            again = asyncio.run(drained(db_url, total))
            once = (
                after["events"] == after["cases"] == after["transfers"] == total
                and after["unprocessed"] == 0
                and after["jobs_failed"] == 0
                and again["events"] == again["cases"] == total
                and all(s == 200 for s in statuses)
            )
            print(
                f"handled once: {after['events']} events stored, {after['cases']} cases for "
                f"{after['transfers']} transfers (of {total} sent), {after['unprocessed']} unhandled, "
                f"{after['jobs_failed']} failed jobs; {len(statuses)} replays answered "
                f"{sorted(set(statuses))}, then {again['events']} events and {again['cases']} cases"
            )
            ok = ok and once
        else:
            print("handled once: not checked here (count the events and cases in the target's database)")
        print("PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if db_url is not None:
            asyncio.run(drop_db(db_url))


if __name__ == "__main__":
    main()
