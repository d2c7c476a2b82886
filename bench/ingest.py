"""Ingest benchmark against PostgreSQL: events/s, p99 acknowledgement, CPU per event, mapping lag.

Creates its own database, runs the app with `supportlens serve --workers 2` (its in-process task worker
off) as a subprocess and loads it with 20 concurrent senders of 50-event batches, each on its own
keep-alive connection (bench/http1.py's lean HTTP/1.1 sender; --sender httpx2 for the client used
before), then counts the stored events. Phases:

- ingest: the senders together offer --rate events/s (10,500: the 10,000 target plus 5 %) for
  --duration seconds, each on a fixed schedule; latency counts from when a batch was due. No worker
  runs, so the CPU (app + PostgreSQL) is that of the ingest path alone. Targets: >= 10,000 events/s
  acknowledged, p99 <= 50 ms, <= 120 ms of CPU per 1,000 events.
- ceiling: each sender sends its next batch as soon as the last is acknowledged, for
  --ceiling-duration seconds: the most this machine acknowledges (no latency target).
- then a dedicated `supportlens worker` starts, maps the backlog the phases above left, and:
  mapping: --map-rate events/s (5,000) for --map-duration seconds (60), target: mapping lag p99 <= 2 s;
  burst: back-to-back for --burst-duration seconds (30), then recovery: --map-rate again for 30 s,
  target: the lag is back under 1 s (p99 of each 2-second window) within 30 s of the burst's end.
  The lag is read from the worker's supportlens_mapping_lag_seconds histogram (--metrics-port),
  sampled every second; a p99 is reported as the histogram bucket it falls in.

    .venv/bin/python bench/ingest.py [--duration 30] [--rate 10500] [--ceiling-duration 15] [--no-mapping]
        [--sender streams|httpx2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from bench import http1  # noqa: E402
from bench.common import create_db, drop_db, free_port, wait_workers_serving  # noqa: E402

ORIGIN = "https://bench.example"
TARGET_EPS = 10_000
TARGET_P99_MS = 50
TARGET_CPU_MS_PER_1000 = 120
TARGET_LAG_P99_S = 2.0
TARGET_RECOVERED_LAG_S = 1.0
TARGET_RECOVERY_S = 30.0


async def prepare(url: str) -> str:
    from supportlens.capture import sites
    from supportlens.db import migrate
    from supportlens.db.engine import make_engine, make_sessionmaker

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


SENDERS = {"streams": http1.Client, "httpx2": http1.Httpx2Client}


async def load(
    base: str, key: str, senders: int, batch: int, duration: float, rate: float, sender: str = "streams"
) -> dict:
    """Run the senders for `duration` seconds, each on its own keep-alive connection.

    rate > 0: open loop. Together the senders offer `rate` events/s, each on its own fixed schedule,
    and a batch's latency counts from the moment it was due, so a server that falls behind pays for
    the queue it builds (no coordinated omission). rate = 0: closed loop, each sender sends its next
    batch as soon as the last one is acknowledged, which finds the ceiling (its latency is then just
    senders / throughput, by Little's law). Bodies are built beforehand, so the generator's own CPU
    goes to sending. `sender` is the HTTP client: "streams" (bench/http1.py) or "httpx2".
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = duplicates = 0
    headers = {
        "Content-Type": "text/plain",
        "Origin": ORIGIN,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131",
    }
    interval = senders * batch / rate if rate > 0 else 0.0
    per_sender = int(duration / interval) if rate > 0 else int(duration * 400 / senders) + 20
    streams = [Sender(n, key, batch) for n in range(senders)]
    bodies = [[s.body() for _ in range(per_sender)] for s in streams]
    async with SENDERS[sender](base, senders) as client:
        # warm up both workers' pools and caches
        warm = Sender(10_000 + int(rate), key, batch)
        warmed = await asyncio.gather(
            *(client.post(k, "/api/ingest/v1/events", warm.body(), headers) for k in range(20))
        )
        warm_events = sum(r.json()["accepted"] for r in warmed if r.status_code == 202)
        generator_cpu0 = time.process_time()
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
                r = await client.post(n, "/api/ingest/v1/events", body, own)
                latencies.append((time.monotonic() - due) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 202:
                    got = r.json()
                    accepted += got["accepted"]
                    duplicates += got["duplicates"]

        await asyncio.gather(*(run(n) for n in range(senders)))
        elapsed = time.monotonic() - started
        generator_cpu = time.process_time() - generator_cpu0
    return {
        "elapsed": elapsed,
        "generator_cpu": generator_cpu,
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


LAG_METRIC = "supportlens_mapping_lag_seconds"


def lag_buckets(text_body: str) -> dict[float, float]:
    """Cumulative counts of the lag histogram by upper bound (le), +Inf as infinity."""
    out: dict[float, float] = {}
    for line in text_body.splitlines():
        if line.startswith(LAG_METRIC + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_p99(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The bucket bound holding the 99th percentile of the observations between two samples, and how many."""
    bounds = sorted(after)
    delta = {b: after[b] - before.get(b, 0.0) for b in bounds}
    total = delta[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return 0.0, 0
    for b in bounds:
        if delta[b] >= 0.99 * total:
            return b, int(total)
    return float("inf"), int(total)


class LagSampler:
    """Samples the worker's lag histogram every second while a phase runs."""

    def __init__(self, metrics_url: str) -> None:
        self.url = metrics_url
        self.samples: list[tuple[float, dict[float, float]]] = []
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> dict[float, float]:
        async with httpx2.AsyncClient(timeout=5) as c:
            got = lag_buckets((await c.get(self.url)).text)
        self.samples.append((time.monotonic(), got))
        return got

    async def _loop(self) -> None:
        while True:
            try:
                await self.sample()
            except httpx2.TransportError:
                pass
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sample()

    def between(self, start: float, end: float) -> tuple[float, int]:
        inside = [b for t, b in self.samples if start <= t <= end]
        before = [b for t, b in self.samples if t <= start]
        first = before[-1] if before else (inside[0] if inside else {})
        return bucket_p99(first, inside[-1] if inside else first)


async def backlog(url: str) -> tuple[int, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status = 'todo'), "
                        "count(*) FILTER (WHERE status = 'doing') "
                        "FROM procrastinate_jobs WHERE queue_name = 'mapping'"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return int(row[0]), int(row[1])


async def wait_drained(url: str, limit: float = 1800) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        todo, doing = await backlog(url)
        if todo == 0 and doing == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise SystemExit(f"the mapping queue did not drain in {limit:.0f} s")


def report_ingest(
    name: str, rate: float, res: dict, cpu0: tuple[float, float], cpu1: tuple[float, float]
) -> bool:
    lat = res["latencies"]
    eps = res["accepted"] / res["elapsed"]
    p50, p99 = pct(lat, 50), pct(lat, 99)
    print(f"\n[{name}] batches {len(lat)}  statuses {res['statuses']}")
    mean = statistics.mean(lat)
    latency = f"p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {max(lat):.1f} ms   mean {mean:.1f} ms"
    ok = True
    app_cpu, db_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    per_k = (app_cpu + db_cpu) / max(res["accepted"], 1) * 1000
    if rate:
        eps_ok, p99_ok = eps >= TARGET_EPS, p99 <= TARGET_P99_MS
        cpu_ok = per_k * 1000 <= TARGET_CPU_MS_PER_1000
        ok = eps_ok and p99_ok and cpu_ok
        print(f"events/s       {eps:,.0f} acknowledged (offered {rate:,.0f})   target >= {TARGET_EPS:,}  "
              f"{'OK' if eps_ok else 'BELOW TARGET'}")  # fmt: skip
        print(f"ack latency    {latency}   (from when each batch was due)")
        print(f"{'':15}p99 target <= {TARGET_P99_MS} ms  {'OK' if p99_ok else 'ABOVE TARGET'}")
    else:
        cpu_ok = True
        print(f"events/s       {eps:,.0f}: the most this machine acknowledged, generator included")
        print(f"ack latency    {latency}   (= senders / throughput: no target)")
    print(
        f"cpu            app {app_cpu:.1f} s + PostgreSQL {db_cpu:.1f} s for {res['accepted']:,} events "
        f"= {per_k * 1000:.0f} ms per 1,000 events"
        + (f"   target <= {TARGET_CPU_MS_PER_1000} ms  {'OK' if cpu_ok else 'ABOVE TARGET'}" if rate else "")
    )
    # The senders share the cores with the app and PostgreSQL: their CPU is in every latency above.
    gen_per_k = res["generator_cpu"] / max(res["accepted"], 1) * 1e6
    print(f"{'':15}generator CPU {res['generator_cpu']:.1f} s = {gen_per_k:.0f} ms per 1,000 events")
    cores = os.cpu_count() or 1
    print(f"{'':15}-> CPU-bound ceiling on {cores} dedicated cores ~ {cores / per_k * 1000:,.0f} events/s")
    return ok


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--senders", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=10_500, help="events/s offered in the ingest phase")
    ap.add_argument(
        "--ceiling-duration", type=float, default=15, help="seconds of the back-to-back phase (0: skip)"
    )
    ap.add_argument("--no-mapping", action="store_true", help="skip the mapping-lag phases")
    ap.add_argument(
        "--sender",
        choices=sorted(SENDERS),
        default="streams",
        help="HTTP client of the senders (bench/http1.py)",
    )
    ap.add_argument("--map-rate", type=float, default=5000)
    ap.add_argument("--map-duration", type=float, default=60)
    ap.add_argument("--burst-duration", type=float, default=30)
    ap.add_argument("--recovery-duration", type=float, default=30)
    args = ap.parse_args()

    url = await create_db()
    proc = worker = None
    results = []
    lag_lines: list[str] = []
    ok = True
    try:
        key = await prepare(url)
        port = free_port()
        env = {
            **os.environ,
            "SUPPORTLENS_DATABASE_URL": url,
            "SUPPORTLENS_ENVIRONMENT": "development",
            "SUPPORTLENS_RUN_WORKER": "false",  # the ingest path alone; a dedicated worker maps later
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
        phases: list[tuple[str, float, float]] = [("ingest", args.rate, args.duration)]
        if args.ceiling_duration > 0:
            phases.append(("ceiling", 0.0, args.ceiling_duration))
        for name, rate, seconds in phases:
            offered = f"offering {rate:,.0f} events/s" if rate else "each sender back-to-back"
            print(
                f"{name}: {args.senders} senders ({args.sender}) x {args.batch}-event batches, {offered}, "
                f"{seconds:.0f} s"
            )
            cpu0 = cpu_seconds(proc.pid, db_name)
            res = await load(base, key, args.senders, args.batch, seconds, rate, args.sender)
            cpu1 = cpu_seconds(proc.pid, db_name)
            results.append((name, rate, res, cpu0, cpu1))

        if not args.no_mapping:
            todo, _ = await backlog(url)
            metrics_port = free_port()
            worker_env = {**env, "SUPPORTLENS_DATABASE_POOL_SIZE": "4"}
            worker = subprocess.Popen(
                [sys.executable, "-m", "supportlens.cli", "worker", "--metrics-port", str(metrics_port)],
                env=worker_env, cwd=str(ROOT),
            )  # fmt: skip
            print(f"\nmapping: a dedicated worker maps the {todo:,} jobs the ingest phases left", flush=True)
            drained = await wait_drained(url)
            print(f"  drained in {drained:.1f} s", flush=True)
            sampler = LagSampler(f"http://127.0.0.1:{metrics_port}/metrics")
            await sampler.sample()
            sampler.start()
            rate = args.map_rate
            print(f"mapping: offering {rate:,.0f} events/s for {args.map_duration:.0f} s", flush=True)
            t0 = time.monotonic()
            res = await load(base, key, args.senders, args.batch, args.map_duration, rate, args.sender)
            t1 = time.monotonic()
            results.append(("mapping", rate, res, (0.0, 0.0), (0.0, 0.0)))
            p99, n = sampler.between(t0, t1 + 1)
            lag_ok = p99 <= TARGET_LAG_P99_S
            ok = ok and lag_ok
            lag_lines.append(
                f"[mapping] {res['accepted'] / res['elapsed']:,.0f} events/s acknowledged for "
                f"{args.map_duration:.0f} s: mapping lag p99 <= {p99:g} s over {n:,} jobs   "
                f"target <= {TARGET_LAG_P99_S:g} s  "
                f"{'OK' if lag_ok else 'ABOVE TARGET'}"
            )
            print(
                f"burst: back-to-back for {args.burst_duration:.0f} s, then {rate:,.0f} events/s for 30 s",
                flush=True,
            )
            res = await load(base, key, args.senders, args.batch, args.burst_duration, 0.0, args.sender)
            t_burst_end = time.monotonic()
            results.append(("burst", 0.0, res, (0.0, 0.0), (0.0, 0.0)))
            burst_eps = res["accepted"] / res["elapsed"]
            lag_lines.append(
                f"[burst] {burst_eps:,.0f} events/s acknowledged for {args.burst_duration:.0f} s"
            )
            res = await load(base, key, args.senders, args.batch, args.recovery_duration, rate, args.sender)
            results.append(("recovery", rate, res, (0.0, 0.0), (0.0, 0.0)))
            await asyncio.sleep(1.5)
            await sampler.stop()
            windows = []
            recovered_at = None
            start = t_burst_end
            while start + 2 <= time.monotonic():
                w_p99, w_n = sampler.between(start, start + 2)
                windows.append((start - t_burst_end, w_p99, w_n))
                start += 2
            for i, (offset, _, _) in enumerate(windows):
                if all(p <= TARGET_RECOVERED_LAG_S for _, p, _ in windows[i:]):
                    recovered_at = offset + 2
                    break
            rec_ok = recovered_at is not None and recovered_at <= TARGET_RECOVERY_S
            ok = ok and rec_ok
            shown = ", ".join(f"{o:.0f}s:{p:g}" for o, p, _ in windows[:20])
            lag_lines.append(f"[recovery] lag p99 per 2-s window after the burst (offset:bucket s): {shown}")
            lag_lines.append(
                "[recovery] back under "
                f"{TARGET_RECOVERED_LAG_S:g} s "
                + (
                    f"{recovered_at:.0f} s after the burst"
                    if recovered_at is not None
                    else "not within the run"
                )
                + f"   target <= {TARGET_RECOVERY_S:.0f} s  {'OK' if rec_ok else 'MISSED'}"
            )
            await wait_drained(url)
    finally:
        for p in (worker, proc):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
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
    for name, rate, res, cpu0, cpu1 in results:
        if name not in ("ingest", "ceiling"):
            continue
        ok = report_ingest(name, rate, res, cpu0, cpu1) and ok
    for line in lag_lines:
        print(line)
    print(
        f"\nstored events  {stored:,} of {expected:,} accepted in all phases (incl. warm-ups)  "
        f"{'OK: every accepted event stored' if ok_stored else 'MISMATCH'}"
    )
    print(f"sessions       {sessions:,}  (session counters sum to {counted:,})")
    print(f"load average   {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if ok and ok_stored else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
