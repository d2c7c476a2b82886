"""CPU and SQL statements of one `GET /api/search`, in one process: the load bench's searches, no load.

The load bench's world in miniature: the simulators (`supportlens sandbox`, no added latency) in a
child process, the app under Uvicorn in a thread of this process, the demo customers with three
seeded sessions each (bench/load/run.py's `prepare` and `seed_sessions`), and the vendors' answers
cached (Redis), as they mostly are under the load bench's desk of agents. Each round searches every
demo customer by e-mail, by name and by phone, one after the other; printed: this process's CPU
(`time.process_time`: app and client) per search and the SQL statements per search (SQLAlchemy's
cursor events), median over the rounds. Wall-clock time is not printed: it is the load bench's.

    .venv/bin/python bench/search_cost.py [--rounds 5] [--customers 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import create_db, drop_db, flush_redis, free_port  # noqa: E402
from bench.load.run import prepare, seed_sessions  # noqa: E402

REDIS_URL = os.environ.get("SUPPORTLENS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _queries(customers: list[dict[str, str]]) -> list[str]:
    return [q for c in customers for q in (c["email"], c["name"], c["phone"])]


def _settings(url: str, sandbox_port: int) -> Any:
    from supportlens.config import Settings
    from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET
    from supportlens_sandbox.hubspot import HUBSPOT_TOKEN

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        secret_key=uuid.uuid4().hex * 2,
        secure_cookies=False,
        database_url=url,
        redis_url=REDIS_URL,
        log_level="WARNING",
        hubspot_base_url=f"http://127.0.0.1:{sandbox_port}",
        hubspot_token=HUBSPOT_TOKEN,
        hubspot_requests_per_10s=10000,
        hubspot_search_per_second=100,
        dwolla_base_url=f"http://127.0.0.1:{sandbox_port + 1}",
        dwolla_key=DWOLLA_KEY,
        dwolla_secret=DWOLLA_SECRET,
        clarity_export_base_url="http://127.0.0.1:9",
    )


def _round(client: httpx2.Client, queries: list[str], statements: list[int]) -> tuple[float, int, int]:
    """CPU seconds, statements and non-200 answers of one search of each query."""
    errors = 0
    before, cpu = statements[0], time.process_time()
    for q in queries:
        r = client.get("/api/search", params={"q": q})
        errors += r.status_code != 200
    # The history row is written after the answer: let the background tasks finish inside the round.
    time.sleep(0.2)
    return time.process_time() - cpu, statements[0] - before, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--customers", type=int, default=40, help="demo customers searched (and seeded)")
    args = ap.parse_args()

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from tests.support.live import LiveServer

    from supportlens.app import create_app

    url = asyncio.run(create_db())
    asyncio.run(flush_redis(REDIS_URL))
    sandbox_port = free_port()
    sandbox = subprocess.Popen(
        [str(Path(sys.executable).parent / "supportlens"), "sandbox", "--port", str(sandbox_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(Engine, "before_cursor_execute", count)  # every engine the app makes
    try:
        config = asyncio.run(prepare(url, 2))
        config["customers"] = config["customers"][: args.customers]
        settings = _settings(url, sandbox_port)
        server = LiveServer(create_app(settings)).start()
        _wait(f"http://127.0.0.1:{sandbox_port}/__sandbox/knobs")
        seeded = seed_sessions(server.url, config)
        time.sleep(3)  # the task worker maps the seeded sessions to their customers
        queries = _queries(config["customers"])
        headers = {"Authorization": f"Bearer {config['token']}", "Accept": "application/json"}
        with httpx2.Client(base_url=server.url, headers=headers, timeout=30) as client:
            _round(client, queries, statements)  # warms the vendors' cache and the process
            rounds = [_round(client, queries, statements) for _ in range(args.rounds)]
        server.stop()
        cpu = statistics.median(r[0] for r in rounds) / len(queries) * 1000
        stmts = statistics.median(r[1] for r in rounds) / len(queries)
        errors = sum(r[2] for r in rounds)
        print(f"{seeded} sessions seeded; {len(queries)} a round, {args.rounds} rounds, {errors} errors")
        print(f"/api/search: {cpu:.2f} ms CPU per search (app + client), {stmts:.2f} SQL statements each")
    finally:
        sandbox.terminate()
        sandbox.wait()
        asyncio.run(drop_db(url))
    return 0


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


if __name__ == "__main__":
    raise SystemExit(main())
