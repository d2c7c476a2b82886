"""Load test: 50 agents searching and opening sessions while 20 sites send events, for a fixed time.

Sets up a dedicated PostgreSQL database (migrated), the HubSpot and Dwolla simulators
(`supportlens sandbox`, demo world, added latency), an agent with an API token, 20 sites, seed
sessions for the demo customers (through the real ingest API), then runs
`supportlens serve --workers 2` with Redis and drives it with headless locust
(bench/load/locustfile.py). While it runs it samples the resident memory of every app process
(psutil). Prints the error rate and p95 per endpoint beside the targets:

    0 errors; p95 of every agent endpoint <= 250 ms; every app process < 300 MB resident.

    .venv/bin/python bench/load/run.py                        # 60 s, 50 agents, 20 sites
    .venv/bin/python bench/load/run.py --duration 30 --agents 20 --sites 5
    .venv/bin/python bench/load/run.py --separate-worker       # web workers do not map (docs/deploy.md)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import tree_cpu_seconds  # noqa: E402

# Visitors' browsers (a client library's own User-Agent is automated traffic, never mapped).
BROWSER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

BIN = Path(sys.executable).parent
SERVER = os.environ.get("SUPPORTLENS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("SUPPORTLENS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
AGENT_TARGET_P95_MS = 250.0
RSS_TARGET_MB = 300.0
ORIGIN_FMT = "https://shop{}.example"
SEED_EVENTS = ["navigation", "click", "scroll", "error", "click", "rage_click"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx2.get(url, timeout=2).status_code < 500:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


async def create_db(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(SERVER.replace("+asyncpg", ""))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return SERVER.rsplit("/", 1)[0] + f"/{name}"


async def drop_db(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER.replace("+asyncpg", ""))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def prepare(url: str, n_sites: int) -> dict[str, Any]:
    """Migrate; create the agent (API token) and the sites; return the locust configuration."""
    from supportlens.auth import service as auth_service
    from supportlens.capture import sites
    from supportlens.config import Settings
    from supportlens.db import migrate
    from supportlens.db.engine import make_engine, make_sessionmaker
    from supportlens_sandbox.crm_demo import today_world

    await migrate.upgrade_async(url)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db:
            agent = await auth_service.create_agent(
                db, email="load.agent@example.com", role="agent", name="Load", password=uuid.uuid4().hex
            )
            token = await auth_service.create_api_token(db, agent)
            site_list = []
            for i in range(n_sites):
                _site, key = await sites.create_site(
                    db, name=f"Shop {i}", origins=[ORIGIN_FMT.format(i)], clarity_project_id="load1"
                )
                site_list.append({"key": key, "origin": ORIGIN_FMT.format(i)})
    finally:
        await engine.dispose()
    world = today_world()
    customers = [
        {"email": c.email, "name": f"{c.first_name} {c.last_name}", "phone": c.phone_display}
        for c in world.customers
        if c.email
    ]
    return {"token": token, "sites": site_list, "customers": customers}


def seed_sessions(base: str, config: dict[str, Any], per_customer: int = 3) -> int:
    """A few sessions per demo customer through the ingest API, so that agents find some."""
    sent = 0
    now = datetime.now(UTC)
    with httpx2.Client(base_url=base, timeout=30) as c:
        for n, customer in enumerate(config["customers"]):
            site = config["sites"][n % len(config["sites"])]
            for k in range(per_customer):
                start = now - timedelta(days=k + 1, minutes=n)
                batch = {
                    "siteKey": site["key"],
                    "clarity": {
                        "projectId": "load1",
                        "userId": f"seed{n}",
                        "sessionId": f"seed{n}x{k}",
                        "pageNum": 1,
                    },
                    "customer": {"email": customer["email"], "name": customer["name"]},
                    "consent": {"analytics": True},
                    "page": {
                        "url": f"{site['origin']}/pay",
                        "title": "Pay",
                        "referrer": "",
                        "viewport": {"w": 1280, "h": 800},
                    },
                    "events": [
                        {
                            "id": str(uuid.uuid4()),
                            "type": t,
                            "ts": (start + timedelta(seconds=5 * i)).isoformat(),
                            "url": f"{site['origin']}/pay",
                            "selector": "button#pay",
                            "x": 100 + i,
                            "y": 200,
                            "data": {"text": "Pay"},
                        }
                        for i, t in enumerate(SEED_EVENTS * 5)
                    ],
                }
                r = c.post(
                    "/api/ingest/v1/events",
                    json=batch,
                    headers={
                        "Origin": site["origin"],
                        "X-Forwarded-For": f"10.9.{n % 250}.{k + 1}",
                        "User-Agent": BROWSER_AGENT,
                    },
                )
                r.raise_for_status()
                sent += 1
    return sent


class MemorySampler(threading.Thread):
    """Samples the resident memory of the serve process and each of its workers every second."""

    def __init__(self, pid: int, task_worker: int | None = None) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        # `supportlens worker` beside serve (--separate-worker): sampled, and its CPU counted, too.
        self.task_worker = psutil.Process(task_worker) if task_worker is not None else None
        self.peak: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.stop_flag = threading.Event()
        self.cpu_start = self.cpu_seconds()
        self.cpu_end = self.cpu_start
        self.worker_cpu_start = self.worker_cpu_seconds()
        self.worker_cpu_end = self.worker_cpu_start

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(self.root.pid).values())

    def worker_cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(self.task_worker.pid).values()) if self.task_worker else 0.0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            if self.task_worker is not None:
                procs.append(self.task_worker)
                self.names.setdefault(self.task_worker.pid, "taskworker")
            for p in procs:
                try:
                    rss = p.memory_info().rss / 1e6
                except psutil.NoSuchProcess:
                    continue
                self.peak[p.pid] = max(self.peak.get(p.pid, 0.0), rss)
                if p.pid not in self.names:
                    self.names[p.pid] = "supervisor" if p.pid == self.root.pid else _role(p)
            self.stop_flag.wait(1.0)


def _role(p: psutil.Process) -> str:
    """A child of `serve`: a worker, or the helper multiprocessing starts to track its semaphores."""
    try:
        return "tracker" if "resource_tracker" in " ".join(p.cmdline()) else "worker"
    except psutil.Error:
        return "worker"


Histogram = tuple[str, tuple[str, str]]  # metric name, the two labels figures are kept apart by
HTTP_HISTOGRAM: Histogram = ("supportlens_http_request_duration_seconds", ("method", "route"))
LIMIT_WAIT_HISTOGRAM: Histogram = ("supportlens_upstream_rate_limit_wait_seconds", ("vendor", "bucket"))


def _histogram(text: str, histogram: Histogram) -> dict[tuple[str, str], dict[float, float]]:
    """Cumulative bucket counts of a histogram per pair of labels (other labels summed)."""
    name, (first, second) = histogram
    out: dict[tuple[str, str], dict[float, float]] = {}
    pattern = re.compile(name + r"_bucket\{(.*?)\} (\S+)")
    for m in pattern.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = (labels.get(first, ""), labels.get(second, ""))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets = out.setdefault(key, {})
        buckets[le] = buckets.get(le, 0.0) + float(m.group(2))  # summed over status codes
    return out


def server_side(
    before: str, after: str, histogram: Histogram = HTTP_HISTOGRAM
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(count, count within 250 ms, p95 in ms interpolated within its bucket) per pair of labels."""
    old, new = _histogram(before, histogram), _histogram(after, histogram)
    result = {}
    for key, buckets in new.items():
        diff = {le: n - old.get(key, {}).get(le, 0.0) for le, n in buckets.items()}
        edges = sorted(diff)
        count = diff[float("inf")]
        if count <= 0:
            continue
        rank, lower, below, p95 = 0.95 * count, 0.0, 0.0, float("inf")
        for le in edges:
            if diff[le] >= rank:
                upper = le if le != float("inf") else lower * 2
                p95 = (lower + (upper - lower) * (rank - below) / max(diff[le] - below, 1e-9)) * 1000
                break
            lower, below = le, diff[le]
        result[key] = (count, diff.get(0.25, 0.0), p95)
    return result


def upstream_calls(text: str, vendor: str = "hubspot") -> float:
    """HubSpot calls made so far, whatever their outcome, summed over the workers."""
    pattern = re.compile(r"supportlens_upstream_calls_total\{(.*?)\} (\S+)")
    return sum(float(m.group(2)) for m in pattern.finditer(text) if f'vendor="{vendor}"' in m.group(1))


def exact_times(path: Path, since: float) -> dict[str, list[float]]:
    """Milliseconds per "TYPE name" of the requests sent from `since` on (the locustfile writes them)."""
    times: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        at, name, ms, _failed = line.split("\t")
        if float(at) >= since:
            times.setdefault(name, []).append(float(ms))
    return {name: sorted(values) for name, values in times.items()}


def nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def read_stats(prefix: str) -> list[dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--think", default="8,16", help="seconds between an agent's investigations: min,max")
    parser.add_argument("--upstream-latency-ms", type=float, default=60.0, help="added by the simulators")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--spawn-rate", type=float, default=10, help="users started per second; measuring starts once all run"
    )
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="production layout: serve with its in-process task worker off, plus one `supportlens worker`",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="supportlens-load-"))
    db_name = f"supportlens_load_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_db(db_name))
    procs: list[subprocess.Popen] = []
    try:
        config = asyncio.run(prepare(url, args.sites))
        cfg_path = work / "config.json"
        cfg_path.write_text(json.dumps(config))

        sandbox_port, app_port = free_port(), free_port()
        while app_port in (sandbox_port, sandbox_port + 1):
            app_port = free_port()
        sandbox_log = work / "sandbox.log"
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "supportlens"),
                    "sandbox",
                    "--port",
                    str(sandbox_port),
                    "--latency-ms",
                    str(args.upstream_latency_ms),
                ],
                stdout=sandbox_log.open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET
        from supportlens_sandbox.hubspot import HUBSPOT_TOKEN

        env = {
            **os.environ,
            "SUPPORTLENS_ENVIRONMENT": "production",
            "SUPPORTLENS_SECRET_KEY": uuid.uuid4().hex * 2,
            "SUPPORTLENS_SECURE_COOKIES": "false",
            "SUPPORTLENS_DATABASE_URL": url,
            "SUPPORTLENS_REDIS_URL": REDIS,
            "SUPPORTLENS_LOG_LEVEL": os.environ.get("SUPPORTLENS_BENCH_LOG_LEVEL", "WARNING"),
            "SUPPORTLENS_HUBSPOT_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "SUPPORTLENS_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            # The simulated account is a Professional one (190 requests per 10 s, as the simulator
            # enforces): a desk of 50 agents is not on Starter's 100. Searches: 5 per second on every tier.
            "SUPPORTLENS_HUBSPOT_REQUESTS_PER_10S": "190",
            "SUPPORTLENS_DWOLLA_BASE_URL": f"http://127.0.0.1:{sandbox_port + 1}",
            "SUPPORTLENS_DWOLLA_KEY": DWOLLA_KEY,
            "SUPPORTLENS_DWOLLA_SECRET": DWOLLA_SECRET,
            "SUPPORTLENS_CLARITY_EXPORT_BASE_URL": "http://127.0.0.1:9",
            "SUPPORTLENS_FORWARDED_ALLOW_IPS": "127.0.0.1",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        worker = None
        if args.separate_worker:
            # docs/deploy.md: web replicas do not map; a dedicated worker runs the queue.
            env["SUPPORTLENS_RUN_WORKER"] = "false"
            worker = subprocess.Popen(
                [str(BIN / "supportlens"), "worker"],
                env=env,
                stdout=(work / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            procs.append(worker)
        app_log = work / "app.log"
        serve = subprocess.Popen(
            [str(BIN / "supportlens"), "serve", "--port", str(app_port), "--workers", str(args.workers)],
            env=env,
            stdout=app_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(serve)
        base = f"http://127.0.0.1:{app_port}"
        wait_http(f"http://127.0.0.1:{sandbox_port}/__sandbox/knobs", procs[0], sandbox_log)
        wait_http(f"{base}/readyz", serve, app_log)
        t = time.perf_counter()
        seeded = seed_sessions(base, config)
        took = time.perf_counter() - t
        print(f"seeded {seeded} sessions for {len(config['customers'])} demo customers in {took:.1f} s")

        load_before = os.getloadavg()
        sampler = MemorySampler(serve.pid, worker.pid if worker is not None else None)
        sampler.start()
        prefix = str(work / "locust")
        users = args.agents + args.sites
        locust_env = {
            **os.environ,
            "SUPPORTLENS_LOAD_CONFIG": str(cfg_path),
            "SUPPORTLENS_LOAD_TIMES": str(work / "times.tsv"),
            "SUPPORTLENS_LOAD_THINK": args.think,
            "SUPPORTLENS_LOAD_AGENTS": str(args.agents),
            "SUPPORTLENS_LOAD_SITES": str(args.sites),
        }
        print(
            f"locust: {args.agents} agents + {args.sites} sites for {args.duration} s against {base} "
            f"({args.workers} workers)"
        )
        ramp = users / args.spawn_rate
        locust = subprocess.Popen(
            [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "bench" / "load" / "locustfile.py"),
                "--headless",
                "--users",
                str(users),
                "--spawn-rate",
                str(args.spawn_rate),
                # A desk does not start 70 investigations in one second: users start over `ramp`
                # seconds, and locust's figures (--reset-stats) and ours count only what follows.
                "--reset-stats",
                "--run-time",
                f"{args.duration + ramp:.0f}s",
                "--host",
                base,
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--stop-timeout",
                "10",
            ],
            env=locust_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(ramp)
        measured_from = time.time()
        metrics_before = httpx2.get(f"{base}/metrics", timeout=10).text
        sampler.cpu_start = sampler.cpu_seconds()
        sampler.worker_cpu_start = sampler.worker_cpu_seconds()
        locust_out, locust_err = locust.communicate()
        sampler.cpu_end = sampler.cpu_seconds()
        sampler.worker_cpu_end = sampler.worker_cpu_seconds()
        sampler.stop_flag.set()
        sampler.join()
        load_after = os.getloadavg()
        metrics = httpx2.get(f"{base}/metrics", timeout=10).text

        rows = read_stats(prefix)
        exact = exact_times(work / "times.tsv", measured_from)
        ok = True
        print()
        print("percentiles from each request's exact time, as the load generator saw it:")
        print(f"{'endpoint':<44} {'requests':>8} {'errors':>7} {'p50 ms':>7} {'p95 ms':>7}  target")
        for row in rows:
            name = row["Name"]
            if name == "Aggregated":
                continue
            reqs, fails = int(row["Request Count"]), int(row["Failure Count"])
            p95 = float(row["95%"]) if row["95%"] not in ("N/A", "") else 0.0
            p50 = float(row["50%"]) if row["50%"] not in ("N/A", "") else 0.0
            if times := exact.get(f"{row['Type']} {name}"):  # locust rounds to 10 ms above 100 ms
                p50, p95 = nearest_rank(times, 0.5), nearest_rank(times, 0.95)
            agent = "ingest" not in name
            target = f"<= {AGENT_TARGET_P95_MS:.0f} ms" if agent else "(site, not an agent endpoint)"
            good = fails == 0 and (p95 <= AGENT_TARGET_P95_MS or not agent)
            ok = ok and good
            print(
                f"{row['Type'] + ' ' + name:<44} {reqs:>8} {fails:>7} {p50:>7.0f} {p95:>7.0f}  {target}"
                f"  {'PASS' if good else 'FAIL'}"
            )
        total = next(r for r in rows if r["Name"] == "Aggregated")
        reqs, fails = int(total["Request Count"]), int(total["Failure Count"])
        rate = fails / reqs if reqs else 1.0
        verdict = "PASS" if fails == 0 else "FAIL"
        print(f"{'all':<44} {reqs:>8} {fails:>7}   error rate {rate:.3%} (target 0)  {verdict}")
        ok = ok and fails == 0 and reqs > 0
        if fails:
            fpath = Path(f"{prefix}_failures.csv")
            if fpath.exists():
                print(fpath.read_text()[:3000])
        print()
        print("server side, from the app's own latency histogram (/metrics, both workers, this run only):")
        print(f"{'route':<44} {'requests':>8} {'<= 250 ms':>10} {'p95 ms':>7}")
        for (method, route), (count, within, p95) in sorted(server_side(metrics_before, metrics).items()):
            if route.startswith(("/api/search", "/api/clarity/sessions", "/sessions/", "/api/ingest")):
                share = within / count if count else 0.0
                print(f"{method + ' ' + route:<44} {count:>8.0f} {share:>10.1%} {p95:>7.0f}")
        print("(the locust figures above also hold the load generator's own delays: one process, 70 users)")
        calls = upstream_calls(metrics) - upstream_calls(metrics_before)
        searches = sum(int(r["Request Count"]) for r in rows if r["Name"] == "/api/search")
        per_s = args.duration
        print(
            f"HubSpot: {calls:.0f} calls in {per_s} s = {calls / per_s:.1f}/s for {searches} searches "
            f"({searches / per_s:.1f}/s); the account allows 5 searches/s plus 19 other calls/s; an "
            "uncached search by e-mail needs 1-4 other calls, by name or phone 1 search and 1-4 others"
        )
        waits = server_side(metrics_before, metrics, LIMIT_WAIT_HISTOGRAM)
        print(
            "waits under our own rate limits (client side, all workers): "
            + ", ".join(
                f"{vendor} {bucket} n={count:.0f} p95 {p95:.0f} ms"
                for (vendor, bucket), (count, _within, p95) in sorted(waits.items())
            )
        )
        print()
        print("resident memory, peak while under load:")
        for pid, peak in sorted(sampler.peak.items()):
            good = peak < RSS_TARGET_MB
            ok = ok and good
            print(
                f"  {sampler.names[pid]:<10} pid {pid:<8} {peak:7.1f} MB   target < {RSS_TARGET_MB:.0f} MB"
                f"  {'PASS' if good else 'FAIL'}"
            )
        accepted = sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('supportlens_ingest_events_total{outcome="accepted"}')
        )
        print(f"ingest: {accepted:.0f} events accepted during the run (from /metrics, summed over workers)")
        cpu = sampler.cpu_end - sampler.cpu_start
        print(
            f"app CPU: {cpu:.1f} s over {args.duration} s = {cpu / max(reqs, 1) * 1000:.1f} ms per request; "
            f"machine load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
            f"({os.cpu_count()} cores; figures above 1 per core mean the app waited for CPU)"
        )
        if worker is not None:
            print(
                f"task worker CPU (mapping the ingested events, apart from the web workers): "
                f"{sampler.worker_cpu_end - sampler.worker_cpu_start:.1f} s over {args.duration} s"
            )
        if locust.returncode not in (0, 1):
            print(locust_out[-2000:], locust_err[-3000:])
            ok = False
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if not args.keep:
            asyncio.run(drop_db(db_name))
        print(f"logs and locust CSVs in {work}")


if __name__ == "__main__":
    sys.exit(main())
