"""`supportlens demo` start-up: wall time from the command to the first answer of its login page.

Three cases, each run --runs times (the median and the slowest are printed):

- new: no data directory yet (the first `make demo`): initdb of the embedded PostgreSQL, the
  database, pg_trgm, migrations, demo seed data;
- fresh: `--fresh` (the default, so every later `make demo`) on the data directory the run before
  left: the server starts on its files, the database is dropped and made anew, migrated, seeded;
- warm: `--no-fresh`: the server starts on its files, migrations find nothing to do, the seed adds
  what is missing.

Each run ends with SIGTERM, and the benchmark fails if the demo's PostgreSQL outlives it. No
target: the figure is for the record (README, "Embedded PostgreSQL").
Set SUPPORTLENS_DATABASE_URL to time the demo on a server of your own instead (then "cold" only
wipes the demo's files, not that database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402

DEMO_PORTS = 5  # the app, HubSpot, Dwolla, Clarity, the demo shop


def _free_block() -> int:
    while True:
        base = free_port()
        if base + DEMO_PORTS < 65535 and all(_port_free(p) for p in range(base, base + DEMO_PORTS)):
            return base


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _postgres_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class PortTaken(Exception):
    """Another process took one of the demo's ports between the check and the demo's own."""


def one_run(data_dir: Path, fresh: bool, timeout: float) -> float:
    for _ in range(5):
        try:
            return _timed_start(data_dir, fresh, timeout)
        except PortTaken:
            continue
    raise SystemExit("five port blocks in a row were taken by others")


def _timed_start(data_dir: Path, fresh: bool, timeout: float) -> float:
    port = _free_block()
    env = {**os.environ, "SUPPORTLENS_LOG_LEVEL": "WARNING"}
    command = [
        sys.executable,
        "-m",
        "supportlens.cli",
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if not fresh:
        command.append("--no-fresh")
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                error = proc.stderr.read().decode()  # type: ignore[union-attr]
                if "is in use" in error:
                    raise PortTaken(error)
                raise SystemExit(f"the demo exited early:\n{error[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"the demo did not answer within {timeout:.0f} s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        postgres = _postgres_pid(data_dir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if postgres is not None:
        deadline = time.monotonic() + 10
        while _alive(postgres):
            if time.monotonic() > deadline:
                raise SystemExit(f"the demo's PostgreSQL (pid {postgres}) outlived the demo")
            time.sleep(0.1)
    return elapsed


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()

    # Outside the working tree and /tmp/pytest-of-*: as root the embedded server's parents get o+rx.
    base = Path(tempfile.mkdtemp(prefix="supportlens-bench-demo-"))
    try:
        data_dir = base / "demo"
        results: dict[str, list[float]] = {"new": [], "fresh": [], "warm": []}
        for _ in range(args.runs):
            shutil.rmtree(data_dir, ignore_errors=True)
            results["new"].append(one_run(data_dir, fresh=True, timeout=args.timeout))
            results["fresh"].append(one_run(data_dir, fresh=True, timeout=args.timeout))
            results["warm"].append(one_run(data_dir, fresh=False, timeout=args.timeout))
        print(f"supportlens demo start-up, command to first 200 of /login ({args.runs} runs each)")
        for case, times in results.items():
            print(f"  {case:5}: median {statistics.median(times):5.1f} s, slowest {max(times):5.1f} s")
        print("  the demo's PostgreSQL was gone after every SIGTERM")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
