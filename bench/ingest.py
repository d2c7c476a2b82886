"""Ingest benchmark against PostgreSQL: sustained events/s, p99 acknowledgement latency, nothing lost.

Creates its own database, runs the app with `supportlens serve --workers 2` as a subprocess and loads it with
20 concurrent senders of 50-event batches (httpx2), then counts the stored events. Two phases:

- sustained: the senders together offer --rate events/s (5,250: the 5,000 target plus 5 %) for
  --duration seconds, each on a fixed schedule; latency counts from when a batch was due. Targets:
  >= 5,000 events/s acknowledged, p99 <= 100 ms.
- ceiling: each sender sends its next batch as soon as the last is acknowledged, for
  --ceiling-duration seconds: the most this machine acknowledges (no latency target: in a closed
  loop latency is just senders / throughput).

    .venv/bin/python bench/ingest.py [--duration 30] [--rate 5250] [--ceiling-duration 15] [--senders 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import create_db, drop_db, free_port, wait_workers_serving  # noqa: E402

ORIGIN = "https://bench.example"
TARGET_EPS = 5000
TARGET_P99_MS = 100


async def prepare(url: str) -> str:
    from supportlens.db import migrate
    from supportlens.db.engine import make_engine, make_sessionmaker
    from supportlens.sessions import sites

    await migrate.upgrade_async(url)
    settings_env = {"SUPPORTLENS_DATABASE_URL": url}
    os.environ.update(settings_env)
    from supportlens.config import get_settings

    get_settings.cache_clear()
    engine = make_engine(get_settings())
    async with make_sessionmaker(engine)() as db:
        _, key = await sites.create_site(db, name="Bench", origins=[ORIGIN], clarity_project_id="bench")
    await engine.dispose()
    return key


class Sender:
    """One visitor stream: a Clarity session per 20 batches, half of them signed in."""

    def __init__(self, n: int, key: str, batch: int) -> None:
        self.n, self.key, self.batch = n, key, batch
        self.rng = random.Random(n)
        self.sent = 0
        self.user = f"u{n}x{uuid.uuid4().hex[:6]}"
        self.session = ""

    def body(self) -> bytes:
        if self.sent % 20 == 0:
            self.session = uuid.uuid4().hex[:10]
        self.sent += 1
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        kinds = ("click", "click", "scroll", "navigation", "click", "error", "rage_click", "dead_click")
        events = []
        for i in range(self.batch):
            kind = kinds[i % len(kinds)]
            events.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": kind,
                    "ts": now,
                    "url": f"{ORIGIN}/products/{self.rng.randint(1, 400)}?ref=mail",
                    "selector": "main > div.grid > a.product-link:nth-of-type(3)",
                    "x": self.rng.randint(0, 1200),
                    "y": self.rng.randint(0, 3000),
                    "data": {"depth": 60} if kind == "scroll" else {"text": "Add to basket"},
                }
            )
        customer = {"email": f"bench{self.n}@example.com", "id": f"c{self.n}", "name": "Bench"}
        doc = {
            "siteKey": self.key,
            "clarity": {"projectId": "bench", "userId": self.user, "sessionId": self.session, "pageNum": 2},
            "customer": customer if self.n % 2 == 0 else None,
            "consent": {"analytics": True},
            "page": {
                "url": f"{ORIGIN}/pay",
                "title": "Pay",
                "referrer": "",
                "viewport": {"w": 1280, "h": 800},
            },
            "events": events,
        }
        return json.dumps(doc).encode()


async def load(base: str, key: str, senders: int, batch: int, duration: float, rate: float) -> dict:
    """Run the senders for `duration` seconds.

    rate > 0: open loop. Together the senders offer `rate` events/s, each on its own fixed schedule,
    and a batch's latency counts from the moment it was due, so a server that falls behind pays for
    the queue it builds (no coordinated omission). rate = 0: closed loop, each sender sends its next
    batch as soon as the last one is acknowledged, which finds the ceiling (its latency is then just
    senders / throughput, by Little's law). Bodies are built beforehand, so the generator's own CPU
    goes to sending.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = duplicates = 0
    limits = httpx2.Limits(max_connections=senders, max_keepalive_connections=senders)
    headers = {
        "Content-Type": "text/plain",
        "Origin": ORIGIN,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131",
    }
    interval = senders * batch / rate if rate > 0 else 0.0
    per_sender = int(duration / interval) if rate > 0 else int(duration * 400 / senders) + 20
    streams = [Sender(n, key, batch) for n in range(senders)]
    bodies = [[s.body() for _ in range(per_sender)] for s in streams]
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        # warm up both workers' pools and caches
        warm = Sender(10_000 + int(rate), key, batch)
        warmed = await asyncio.gather(
            *(client.post("/api/ingest/v1/events", content=warm.body(), headers=headers) for _ in range(20))
        )
        warm_events = sum(r.json()["accepted"] for r in warmed if r.status_code == 202)
        started = time.monotonic()
        stop = started + duration

        async def run(n: int) -> None:
            nonlocal accepted, duplicates
            # each sender is another visitor behind the load balancer (uvicorn trusts 127.0.0.1's header)
            own = {**headers, "X-Forwarded-For": f"203.0.113.{n + 1}"}
            offset = interval * n / senders  # spread the senders over one interval
            for k, body in enumerate(bodies[n]):
                if rate > 0:
                    due = started + offset + k * interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                else:
                    due = time.monotonic()
                    if due >= stop:
                        break
                r = await client.post("/api/ingest/v1/events", content=body, headers=own)
                latencies.append((time.monotonic() - due) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 202:
                    got = r.json()
                    accepted += got["accepted"]
                    duplicates += got["duplicates"]

        await asyncio.gather(*(run(n) for n in range(senders)))
        elapsed = time.monotonic() - started
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": statuses,
        "accepted": accepted,
        "duplicates": duplicates,
        "warm_events": warm_events,
    }


def cpu_seconds(app_pid: int, db_name: str) -> tuple[float, float]:
    """CPU seconds used so far by the app's processes and by the database's server backends."""
    import psutil

    def total(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    root = psutil.Process(app_pid)
    app = total(root) + sum(total(c) for c in root.children(recursive=True))
    db = 0.0
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if cmd.startswith("postgres:") and db_name in cmd:
            db += total(p)
    return app, db


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--senders", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=5250, help="events/s offered in the sustained phase")
    ap.add_argument(
        "--ceiling-duration", type=float, default=15, help="seconds of the back-to-back phase (0: skip)"
    )
    args = ap.parse_args()

    url = await create_db()
    proc = None
    try:
        key = await prepare(url)
        port = free_port()
        env = {
            **os.environ,
            "SUPPORTLENS_DATABASE_URL": url,
            "SUPPORTLENS_ENVIRONMENT": "development",
            "SUPPORTLENS_RUN_JOBS": "false",
            "SUPPORTLENS_LOG_LEVEL": "WARNING",
            "SUPPORTLENS_INGEST_RATE_LIMIT_PER_SITE": "1000000/second",
            "SUPPORTLENS_INGEST_RATE_LIMIT_PER_IP": "1000000/second",
            "SUPPORTLENS_DATABASE_POOL_SIZE": str(max(10, args.senders // args.workers + 2)),
        }
        env.pop("SUPPORTLENS_REDIS_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "supportlens.cli", "serve",
             "--port", str(port), "--workers", str(args.workers)],
            env=env, cwd=str(ROOT),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(base_url=base) as c:
            for _ in range(300):
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the app did not start")
        wait_workers_serving(proc.pid, port, args.workers)
        db_name = url.rsplit("/", 1)[1]
        phases: list[tuple[str, float, float]] = [("sustained", args.rate, args.duration)]
        if args.ceiling_duration > 0:
            phases.append(("ceiling", 0.0, args.ceiling_duration))
        results = []
        for name, rate, seconds in phases:
            offered = f"offering {rate:,.0f} events/s" if rate else "each sender back-to-back"
            print(f"{name}: {args.senders} senders x {args.batch}-event batches, {offered}, {seconds:.0f} s")
            cpu0 = cpu_seconds(proc.pid, db_name)
            res = await load(base, key, args.senders, args.batch, seconds, rate)
            cpu1 = cpu_seconds(proc.pid, db_name)
            results.append((name, rate, res, cpu0, cpu1))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    try:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            stored = int((await conn.execute(text("SELECT count(*) FROM session_events"))).scalar_one())
            sessions = int((await conn.execute(text("SELECT count(*) FROM user_sessions"))).scalar_one())
            counted = int(
                (
                    await conn.execute(text("SELECT coalesce(sum(event_count), 0) FROM user_sessions"))
                ).scalar_one()
            )
        await engine.dispose()
    finally:
        await drop_db(url)

    expected = sum(res["accepted"] + res["warm_events"] for _, _, res, _, _ in results)
    ok_stored = stored == expected
    ok = ok_stored
    for name, rate, res, cpu0, cpu1 in results:
        lat = res["latencies"]
        eps = res["accepted"] / res["elapsed"]
        p50, p99 = pct(lat, 50), pct(lat, 99)
        print(f"\n[{name}] batches {len(lat)}  statuses {res['statuses']}")
        mean = statistics.mean(lat)
        latency = f"p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {max(lat):.1f} ms   mean {mean:.1f} ms"
        if rate:
            eps_ok, p99_ok = eps >= TARGET_EPS, p99 <= TARGET_P99_MS
            ok = ok and eps_ok and p99_ok
            print(f"events/s       {eps:,.0f} acknowledged (offered {rate:,.0f})   target >= {TARGET_EPS:,}  "
                  f"{'OK' if eps_ok else 'BELOW TARGET'}")  # fmt: skip
            print(f"ack latency    {latency}   (from when each batch was due)")
            print(f"{'':15}p99 target <= {TARGET_P99_MS} ms  {'OK' if p99_ok else 'ABOVE TARGET'}")
        else:
            print(f"events/s       {eps:,.0f}: the most this machine acknowledged, generator included")
            print(f"ack latency    {latency}   (= senders / throughput: no target)")
        app_cpu, db_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        per_k = (app_cpu + db_cpu) / max(res["accepted"], 1) * 1000
        print(
            f"cpu            app {app_cpu:.1f} s + PostgreSQL {db_cpu:.1f} s for {res['accepted']:,} events "
            f"= {per_k * 1000:.0f} ms per 1,000 events"
        )
        cores = os.cpu_count() or 1
        print(
            f"{'':15}-> CPU-bound ceiling on {cores} dedicated cores ~ {cores / per_k * 1000:,.0f} events/s"
        )
    print(
        f"\nstored events  {stored:,} of {expected:,} accepted (incl. warm-up)  "
        f"{'OK: every accepted event stored' if ok_stored else 'MISMATCH'}"
    )
    print(f"sessions       {sessions:,}  (session counters sum to {counted:,})")
    print(f"load average   {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
