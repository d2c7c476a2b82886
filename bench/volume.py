"""Agent queries at a large site's volume on PostgreSQL.

Creates a dedicated database, runs the migrations (so `session_events` is partitioned by day),
loads 1,000,000 sessions, their customer links and 20,000,000 events with COPY (generated in
bulk by worker processes, spread over 30 days of daily partitions, customers with many sessions
at the head of a long tail), ANALYZEs, then measures the agent's queries with the app's own
query code:

- a customer's sessions list          p95 target <= 20 ms  (sessions.service.sessions_for_customer)
- a session's events page             p95 target <= 50 ms  (sessions.service events page)
- the local-session part of /api/search p95 target <= 30 ms (sessions.service.search_sessions)

For each it prints EXPLAIN (ANALYZE, BUFFERS) of the SQL the app sent and fails if a plan
reads a big table with a sequential scan.

    .venv/bin/python bench/volume.py                     # full size, drops the database after
    .venv/bin/python bench/volume.py --keep              # keep it (reuse with --reuse)
    .venv/bin/python bench/volume.py --reuse --keep      # measure again on the kept database
    .venv/bin/python bench/volume.py --sessions 20000 --events-per-session 20   # a quick run

SUPPORTLENS_BENCH_PG_URL: server to use (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine  # noqa: E402

DEFAULT_SERVER = os.environ.get(
    "SUPPORTLENS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DB_NAME = "supportlens_bench_volume"
DAYS = 30
TIMEOUT_S = 3.0
TARGETS_MS = {"customer sessions list": 20.0, "session events page": 50.0, "search: local sessions": 30.0}
BIG_TABLES = ("user_sessions", "session_events", "session_customer_mapping")
FIRST = [
    "jane",
    "john",
    "maria",
    "wei",
    "fatima",
    "carlos",
    "olga",
    "ahmed",
    "emma",
    "noah",
    "liam",
    "ava",
    "mia",
    "lucas",
    "sofia",
    "yuki",
    "arjun",
    "chloe",
    "ivan",
    "zara",
    "omar",
    "lena",
    "pablo",
    "nina",
]
LAST = [
    "doe",
    "smith",
    "garcia",
    "chen",
    "khan",
    "silva",
    "novak",
    "ali",
    "brown",
    "jones",
    "miller",
    "davis",
    "lopez",
    "wilson",
    "moore",
    "tanaka",
    "patel",
    "martin",
    "lee",
    "walker",
    "young",
    "king",
]
DOMAINS = ["acme.io", "example.com", "globex.net", "initech.com", "umbrella.org", "hooli.dev", "gmail.com"]
PAGES = [
    "/",
    "/pricing",
    "/login",
    "/account",
    "/pay",
    "/checkout",
    "/transfers",
    "/settings",
    "/help",
    "/invoices",
    "/cards",
    "/statements",
]
EVENT_TYPES = ["navigation", "click", "scroll", "error", "form_submit", "rage_click", "dead_click", "custom"]
EVENT_WEIGHTS = [15, 45, 25, 3, 5, 2, 3, 2]
SELECTORS = [
    "button#pay",
    "a.nav-link",
    "input#amount",
    "form#checkout",
    "div.card",
    "button.submit",
    "a#help",
    "span.total",
]
DEVICES = [
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Safari", "macOS"),
    ("mobile", "Safari", "iOS"),
    ("mobile", "Chrome", "Android"),
    ("tablet", "Safari", "iPadOS"),
    ("desktop", "Firefox", "Linux"),
]


def pg_url(database: str, server: str = DEFAULT_SERVER) -> str:
    """The server's URL with another database (also for a server on a Unix socket: ?host=/dir)."""
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=database).render_as_string(hide_password=False)


def raw_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# ----------------------------------------------------------------------------------------- data


@dataclass
class World:
    """Customers and their weights; sessions are generated in time order from these."""

    customers: list[tuple[str, str]]  # (email, name)
    cum_weights: list[float]


def make_world(n_customers: int, seed: int = 7) -> World:
    rng = random.Random(seed)
    customers = []
    for i in range(n_customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        customers.append((f"{first}.{last}{i}@{rng.choice(DOMAINS)}", f"{first.title()} {last.title()}"))
    # Zipf-like: the busiest customers have thousands of sessions, most have a handful.
    weights = [1.0 / (rank + 10) ** 0.9 for rank in range(n_customers)]
    cum, total = [], 0.0
    for w in weights:
        total += w
        cum.append(total)
    return World(customers, cum)


@dataclass
class SessionChunk:
    """Everything a worker needs to emit the rows of a slice of sessions (time ordered)."""

    seed: int
    rows: list[tuple[str, float, int, int]] = field(default_factory=list)  # (id, start epoch, secs, n events)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def session_rows(
    world: World, n_sessions: int, events_per_session: int, start: datetime, seed: int = 11
) -> Iterator[tuple[str, str, str | None, tuple[str, float, int, int]]]:
    """Yield (user_sessions COPY line, mapping COPY line or "", email, chunk row) per session."""
    rng = random.Random(seed)
    span = DAYS * 86400
    t0 = start.timestamp()
    starts = sorted(t0 + rng.random() * span for _ in range(n_sessions))
    n_cust = len(world.customers)
    # a device (clarity user id) per customer, and some anonymous devices
    for i, st in enumerate(starts):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        identified = rng.random() < 0.7
        cust_idx = rng.choices(range(n_cust), cum_weights=world.cum_weights, k=1)[0]
        email, name = world.customers[cust_idx]
        device = rng.choice(DEVICES)
        duration = int(rng.expovariate(1 / 420)) + 5
        n_events = rng.randint(1, 2 * events_per_session - 1)
        page_views = max(1, n_events // 5)
        entry = f"https://shop.example{rng.choice(PAGES)}"
        exit_ = f"https://shop.example{rng.choice(PAGES)}"
        clarity_user = f"u{cust_idx:x}" if rng.random() < 0.8 else f"a{rng.getrandbits(40):x}"
        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        s_iso, e_iso = _iso(st), _iso(st + duration)
        line = "\t".join(
            [
                sid,
                "proj1",
                clarity_user,
                f"s{i:x}",
                email if identified else r"\N",
                name if identified else r"\N",
                f"cus_{cust_idx}" if identified else r"\N",
                s_iso,
                e_iso,
                str(duration),
                str(page_views),
                entry,
                exit_,
                str(n_events),
                str(n_events * 45 // 100),
                str((rng.random() < 0.1 and 1) or 0),
                "0",
                "0",
                str(rng.randrange(101)),
                f"https://clarity.microsoft.com/player/proj1/{clarity_user}/s{i:x}",
                r"\N",
                "Mozilla/5.0",
                device[0],
                device[1],
                device[2],
                r"\N",
                ip,
                "t",
                "t",
                "{}",
                s_iso,
                e_iso,
            ]
        )
        mapping = ""
        mapped_email = None
        if identified:
            mapped_email = email
            evidence = (
                '[{"method": "email_match", "score": 1.0, "reason": "the site said who was logged in"}]'
            )
            mapping = "\t".join(
                [
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    sid,
                    email,
                    "1.0",
                    "email_match",
                    evidence,
                    r"\N",
                    r"\N",
                    r"\N",
                    s_iso,
                    s_iso,
                    s_iso,
                ]
            )
        elif clarity_user.startswith("u") and rng.random() < 0.5:
            mapped_email = email
            evidence = '[{"method": "device_link", "score": 0.8, "reason": "same device identified before"}]'
            mapping = "\t".join(
                [
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    sid,
                    email,
                    "0.8",
                    "device_link",
                    evidence,
                    r"\N",
                    r"\N",
                    r"\N",
                    s_iso,
                    s_iso,
                    s_iso,
                ]
            )
        yield line, mapping, mapped_email, (sid, st, duration, n_events)


SESSION_COLUMNS = [
    "id",
    "clarity_project_id",
    "clarity_user_id",
    "clarity_session_id",
    "customer_email",
    "customer_name",
    "customer_external_id",
    "session_start",
    "session_end",
    "duration_seconds",
    "page_views",
    "entry_url",
    "exit_url",
    "event_count",
    "click_count",
    "error_count",
    "rage_click_count",
    "dead_click_count",
    "max_scroll_depth",
    "recording_url",
    "heatmap_url",
    "user_agent",
    "device_type",
    "browser",
    "os",
    "location",
    "client_ip",
    "consent_analytics",
    "clarity_confirmed",
    "clarity_data",
    "created_at",
    "updated_at",
]
MAPPING_COLUMNS = [
    "id",
    "session_id",
    "customer_email",
    "confidence_score",
    "mapping_method",
    "evidence",
    "manual_decision",
    "decided_by_agent_id",
    "reason",
    "created_at",
    "updated_at",
    # the copy of the session's start that an insert trigger keeps: triggers are off while loading
    "session_start",
]
EVENT_COLUMNS = [
    "id",
    "session_id",
    "event_type",
    "event_data",
    "timestamp",
    "page_url",
    "element_selector",
    "x",
    "y",
]


def event_chunk(chunk: SessionChunk) -> bytes:
    """COPY text for the events of a slice of sessions (runs in a worker process)."""
    rng = random.Random(chunk.seed)
    types = rng.choices(EVENT_TYPES, weights=EVENT_WEIGHTS, k=4096)
    ids = os.urandom(16 * sum(r[3] for r in chunk.rows)).hex()
    out: list[str] = []
    k = 0
    for sid, st, duration, n in chunk.rows:
        offsets = sorted(rng.random() * duration for _ in range(n))
        for off in offsets:
            h = ids[32 * k : 32 * k + 32]
            eid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            etype = types[k & 4095]
            k += 1
            page = PAGES[k % len(PAGES)]
            out.append(
                f'{eid}\t{sid}\t{etype}\t{{"text": "{etype}"}}\t{_iso(st + off)}\t'
                f"https://shop.example{page}\t{SELECTORS[k % 8]}\t{k % 1280}\t{k % 900}\n"
            )
    return "".join(out).encode()


# ------------------------------------------------------------------------------------- loading


async def create_database(server: str, name: str) -> str:
    conn = await asyncpg.connect(raw_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg_url(name, server)


async def drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(raw_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_exists(server: str, name: str) -> bool:
    conn = await asyncpg.connect(raw_dsn(server))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _bytes_stream(lines: list[str]) -> AsyncIterator[bytes]:
    step = 20000
    for i in range(0, len(lines), step):
        yield ("\n".join(lines[i : i + step]) + "\n").encode()


async def load(
    url: str, n_sessions: int, events_per_session: int, n_customers: int, workers: int, pool: Any
) -> dict:
    from supportlens.db import migrate, partitions

    t = time.perf_counter()
    await migrate.upgrade_async(url)
    start = (datetime.now(UTC) - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    conn = await asyncpg.connect(raw_dsn(url))
    timings: dict[str, float] = {"migrate": time.perf_counter() - t}
    try:
        # 30 days of daily partitions behind the last week ahead.
        engine = create_async_engine(url)
        async with engine.begin() as c:
            await partitions.ensure_event_partitions(c, days_ahead=7, days_back=DAYS + 1)
        await engine.dispose()

        t = time.perf_counter()
        world = make_world(n_customers)
        sessions, mappings, chunks = [], [], []
        chunk = SessionChunk(seed=1)
        for line, mapping, _email, row in session_rows(world, n_sessions, events_per_session, start):
            sessions.append(line)
            if mapping:
                mappings.append(mapping)
            chunk.rows.append(row)
            if len(chunk.rows) == 2000:
                chunks.append(chunk)
                chunk = SessionChunk(seed=len(chunks) + 1)
        if chunk.rows:
            chunks.append(chunk)
        timings["generate sessions"] = time.perf_counter() - t

        # Bulk load as pg_restore does: no per-row trigger (the FK check) while loading, the data is
        # consistent by construction and checked below; synchronous_commit off for this session only.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET synchronous_commit = off")
        t = time.perf_counter()
        await conn.copy_to_table("user_sessions", source=_bytes_stream(sessions), columns=SESSION_COLUMNS)
        await conn.copy_to_table(
            "session_customer_mapping", source=_bytes_stream(mappings), columns=MAPPING_COLUMNS
        )
        timings["COPY sessions + mapping"] = time.perf_counter() - t
        del sessions, mappings

        t = time.perf_counter()
        total = sum(r[3] for c in chunks for r in c.rows)
        sent = 0

        async def stream() -> AsyncIterator[bytes]:
            # at most 2 chunks per worker in flight: generation overlaps COPY, memory stays bounded
            nonlocal sent
            loop = asyncio.get_running_loop()
            pending: list[Any] = []
            todo = iter(chunks)
            while True:
                while len(pending) < 2 * workers:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending.append(pool.apply_async(event_chunk, (nxt,)))
                if not pending:
                    return
                data = await loop.run_in_executor(None, pending.pop(0).get)
                sent += 1
                if sent % 50 == 0:
                    print(f"  events: {sent * 2000:,} sessions' worth sent", flush=True)
                yield data

        await conn.copy_to_table("session_events", source=stream(), columns=EVENT_COLUMNS)
        timings["COPY events"] = time.perf_counter() - t
        await conn.execute("SET session_replication_role = DEFAULT")

        t = time.perf_counter()
        orphans = await conn.fetchval(
            "SELECT count(*) FROM session_customer_mapping m WHERE NOT EXISTS "
            "(SELECT 1 FROM user_sessions s WHERE s.id = m.session_id)"
        )
        assert orphans == 0, "mapping rows without a session"
        # the triggers were off: check what the fill trigger would have written is there
        unfilled = await conn.fetchval(
            "SELECT count(*) FROM session_customer_mapping m JOIN user_sessions s ON s.id = m.session_id "
            "WHERE m.session_start IS DISTINCT FROM s.session_start"
        )
        assert unfilled == 0, "mapping rows whose session_start differs from their session's"
        # what autovacuum does after a load in production: statistics and the visibility map
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("VACUUM (ANALYZE)")
        timings["VACUUM ANALYZE"] = time.perf_counter() - t
        return {"events": total, "timings": timings}
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------ measuring


class SqlCapture:
    """Records the statements the app's query code sends, to EXPLAIN them afterwards."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._hook)

    def _hook(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if self.on:
            self.statements.append((statement, parameters))


@dataclass
class Measure:
    name: str
    timings_ms: list[float]
    source: str  # where the query code came from
    plans: list[str]
    seq_scans: list[str]
    timeouts: int = 0

    @property
    def p95(self) -> float:
        return (
            statistics.quantiles(self.timings_ms, n=20)[18]
            if len(self.timings_ms) >= 20
            else max(self.timings_ms)
        )

    @property
    def p50(self) -> float:
        return statistics.median(self.timings_ms)


async def big_relations(conn: Any) -> set[str]:
    """Relations (tables and partitions) of the big tables holding more than 10,000 rows."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.reltuples > 10000 AND ("
            + " OR ".join(f"c.relname LIKE '{t}%'" for t in BIG_TABLES)
            + ")"
        )
    )
    return {r[0] for r in rows}


async def explain(
    engine: AsyncEngine, statements: list[tuple[str, Any]], big: set[str]
) -> tuple[list[str], list[str]]:
    plans, seq = [], []
    async with engine.connect() as conn:
        for stmt, params in statements:
            if not stmt.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            try:
                result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params)
                plan = "\n".join(r[0] for r in result)
            except DBAPIError:
                await conn.rollback()
                result = await conn.exec_driver_sql("EXPLAIN " + stmt, params)
                plan = f"(slower than {TIMEOUT_S:g} s: plan without ANALYZE)\n" + "\n".join(
                    r[0] for r in result
                )
            plans.append(f"{stmt.strip()}\n{plan}")
            for m in re.finditer(r"Seq Scan on (\S+)", plan):
                if m.group(1) in big:
                    seq.append(m.group(1))
        await conn.rollback()
    return plans, seq


QueryFn = Callable[[AsyncSession, Any], Awaitable[Any]]


def query_code() -> dict[str, tuple[str, QueryFn]]:
    """The app's own query functions; the equivalent SQL (said so) where a function is missing."""
    found: dict[str, tuple[str, QueryFn]] = {}
    from supportlens.config import get_settings

    settings = get_settings()  # the threshold and recording retention the app's reads take
    try:
        from supportlens.sessions import service as sessions_service
    except ImportError:
        sessions_service = None  # type: ignore[assignment]

    if sessions_service is not None and hasattr(sessions_service, "sessions_for_customer"):

        async def customer_list(db: AsyncSession, email: str) -> Any:
            return await sessions_service.sessions_for_customer(
                db, email, settings, limit=20, min_confidence=0.5
            )

        found["customer sessions list"] = (
            "supportlens.sessions.service.sessions_for_customer",
            customer_list,
        )
    else:

        async def customer_list_sql(db: AsyncSession, email: str) -> Any:
            return (
                await db.execute(
                    text(
                        "SELECT s.*, m.confidence_score, m.mapping_method, m.evidence "
                        "FROM session_customer_mapping m JOIN user_sessions s ON s.id = m.session_id "
                        "WHERE m.customer_email = :e "
                        "AND m.confidence_score >= 0.5 AND m.manual_decision IS DISTINCT FROM 'unlink' "
                        "ORDER BY s.session_start DESC LIMIT 20"
                    ),
                    {"e": email},
                )
            ).all()

        found["customer sessions list"] = ("equivalent SQL (sessions.service not present)", customer_list_sql)

    events_fn = None
    for name in ("session_events_page", "events_page", "list_events", "session_events"):
        if sessions_service is not None and callable(getattr(sessions_service, name, None)):
            events_fn = (name, getattr(sessions_service, name))
            break
    if events_fn is not None:
        fn_name, fn = events_fn

        async def events_page(db: AsyncSession, sid: uuid.UUID) -> Any:
            return await fn(db, sid, limit=200)

        found["session events page"] = (f"supportlens.sessions.service.{fn_name}", events_page)
    else:

        async def events_page_sql(db: AsyncSession, sid: uuid.UUID) -> Any:
            return (
                await db.execute(
                    text(
                        "SELECT e.* FROM session_events e WHERE e.session_id = :s "
                        "ORDER BY e.timestamp, e.id LIMIT 200"
                    ),
                    {"s": sid},
                )
            ).all()

        found["session events page"] = ("equivalent SQL (no events page function found)", events_page_sql)

    if sessions_service is not None and hasattr(sessions_service, "search_sessions"):
        from supportlens.customers.query import parse_query

        async def local_search(db: AsyncSession, q: str) -> Any:
            return await sessions_service.search_sessions(db, parse_query(q), settings, limit=10)

        found["search: local sessions"] = ("supportlens.sessions.service.search_sessions", local_search)
    else:

        async def local_search_sql(db: AsyncSession, q: str) -> Any:
            return (
                await db.execute(
                    text(
                        "SELECT s.* FROM session_customer_mapping m "
                        "JOIN user_sessions s ON s.id = m.session_id "
                        "WHERE m.customer_email = :e AND m.confidence_score >= 0.5 "
                        "ORDER BY s.session_start DESC LIMIT 10"
                    ),
                    {"e": q.strip().lower()},
                )
            ).all()

        found["search: local sessions"] = (
            "equivalent SQL (sessions.service.search_sessions not present)",
            local_search_sql,
        )
    return found


async def measure(url: str, samples: int, seed: int = 5, timeout_s: float = 3.0) -> list[Measure]:
    # A query slower than this counts as this long (and fails its target) instead of stalling the run.
    global TIMEOUT_S
    TIMEOUT_S = timeout_s
    timeout_ms = int(timeout_s * 1000)
    engine = create_async_engine(
        url, pool_size=2, connect_args={"server_settings": {"statement_timeout": str(timeout_ms)}}
    )
    capture = SqlCapture(engine)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(seed)
    async with engine.connect() as conn:
        # Customers picked as an agent would meet them: in proportion to their sessions (busy ones often).
        emails = [
            r[0]
            for r in await conn.execute(
                text("SELECT customer_email FROM session_customer_mapping TABLESAMPLE SYSTEM (1) LIMIT :n"),
                {"n": samples * 4},
            )
        ]
        busiest = (
            await conn.execute(
                text(
                    "SELECT customer_email FROM session_customer_mapping GROUP BY customer_email "
                    "ORDER BY count(*) DESC LIMIT 1"
                )
            )
        ).scalar_one()
        session_ids = [
            r[0]
            for r in await conn.execute(
                text("SELECT id FROM user_sessions TABLESAMPLE SYSTEM (1) LIMIT :n"), {"n": samples * 4}
            )
        ]
        big = await big_relations(conn)
        # small databases: TABLESAMPLE's 1 % of pages may hold too few rows
        if len(emails) < samples:
            emails = [
                r[0]
                for r in await conn.execute(
                    text("SELECT customer_email FROM session_customer_mapping ORDER BY random() LIMIT :n"),
                    {"n": samples},
                )
            ]
        if len(session_ids) < samples:
            session_ids = [
                r[0]
                for r in await conn.execute(
                    text("SELECT id FROM user_sessions ORDER BY random() LIMIT :n"), {"n": samples}
                )
            ]
    rng.shuffle(emails)
    rng.shuffle(session_ids)
    emails = (emails * samples)[:samples]
    session_ids = (session_ids * samples)[:samples]
    emails = [busiest, *emails[: samples - 1]]
    names = [e.split("@")[0].rstrip("0123456789").replace(".", " ") for e in emails]
    search_inputs = [e if i % 2 == 0 else n for i, (e, n) in enumerate(zip(emails, names, strict=True))]
    inputs = {
        "customer sessions list": emails,
        "session events page": session_ids[:samples],
        "search: local sessions": search_inputs,
    }
    results = []
    for name, (source, fn) in query_code().items():
        args = inputs[name]
        # warm-up (first use of each plan / connection), then the timed runs
        async with maker() as db:
            for a in args[:3]:
                with contextlib.suppress(DBAPIError):
                    await fn(db, a)
        timings = []
        timeouts = 0
        for a in args:
            async with maker() as db:
                t = time.perf_counter()
                try:
                    await fn(db, a)
                    timings.append((time.perf_counter() - t) * 1000)
                except DBAPIError as exc:
                    if "statement timeout" not in str(exc) and "canceling statement" not in str(exc):
                        raise
                    timeouts += 1
                    timings.append(float(timeout_ms))
        # the plan of the busiest / first input, as the app sent it
        capture.statements.clear()
        capture.on = True
        for a in args[: 2 if name == "search: local sessions" else 1]:
            async with maker() as db:
                with contextlib.suppress(DBAPIError):
                    await fn(db, a)
        capture.on = False
        plans, seq = await explain(engine, capture.statements, big)
        if name == "customer sessions list":
            # and the plan for a customer with few sessions (the slowest sample)
            capture.statements.clear()
            capture.on = True
            async with maker() as db:
                with contextlib.suppress(DBAPIError):
                    await fn(db, args[max(range(len(timings)), key=timings.__getitem__)])
            capture.on = False
            more, more_seq = await explain(engine, capture.statements, big)
            plans += more
            seq += more_seq
        results.append(Measure(name, timings, source, plans, seq, timeouts))
    await engine.dispose()
    return results


def report(results: list[Measure], info: dict) -> bool:
    ok = True
    print()
    for m in results:
        print(f"=== {m.name}  [{m.source}]")
        for plan in m.plans:
            print(plan)
            print()
    print("=" * 100)
    if info:
        print(
            f"data: {info.get('sessions', 0):,} sessions, {info.get('events', 0):,} events over {DAYS} days"
        )
        for k, v in info.get("timings", {}).items():
            print(f"  {k:<28} {v:8.1f} s")
    print(
        f"{'query':<28} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}  result  seq scans on big tables"
    )
    for m in results:
        target = TARGETS_MS[m.name]
        good = m.p95 <= target and not m.seq_scans
        ok = ok and good
        print(
            f"{m.name:<28} {len(m.timings_ms):>5} {m.p50:8.2f} {m.p95:8.2f} {'<= ' + str(int(target)):>8}  "
            f"{'PASS' if good else 'FAIL'}    {', '.join(sorted(set(m.seq_scans))) or 'none'}"
        )
        print(
            f"    query code: {m.source}"
            + (f"; {m.timeouts} runs over {TIMEOUT_S:g} s, counted as {TIMEOUT_S:g} s" if m.timeouts else "")
        )
    return ok


async def main_async(args: argparse.Namespace) -> int:
    server = args.server
    url = pg_url(args.database, server)
    info: dict[str, Any] = {"sessions": args.sessions}
    t0 = time.perf_counter()
    if args.reuse and await database_exists(server, args.database):
        print(f"reusing database {args.database}")
        info = {}
    else:
        print(
            f"creating {args.database}: {args.sessions:,} sessions, "
            f"~{args.sessions * args.events_per_session:,} events, {args.customers:,} customers"
        )
        url = await create_database(server, args.database)
        # worker processes forked before any connection is open
        with mp.get_context("fork").Pool(args.workers) as pool:
            loaded = await load(
                url, args.sessions, args.events_per_session, args.customers, args.workers, pool
            )
        info.update(loaded)
        for k, v in loaded["timings"].items():
            print(f"  {k:<28} {v:8.1f} s", flush=True)
    try:
        results = await measure(url, args.samples, timeout_s=args.timeout)
        ok = report(results, info)
        print(f"total time {time.perf_counter() - t0:.0f} s")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        m.name: {
                            "p50_ms": m.p50,
                            "p95_ms": m.p95,
                            "target_ms": TARGETS_MS[m.name],
                            "source": m.source,
                            "seq_scans": m.seq_scans,
                        }
                        for m in results
                    },
                    indent=2,
                )
            )
        return 0 if ok else 1
    finally:
        if not args.keep:
            await drop_database(server, args.database)
            print(f"dropped database {args.database} (use --keep to keep it)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--events-per-session", type=int, default=20, help="average")
    parser.add_argument("--customers", type=int, default=150_000)
    parser.add_argument("--samples", type=int, default=200, help="timed runs per query")
    parser.add_argument("--workers", type=int, default=2, help="processes generating events")
    parser.add_argument("--database", default=DB_NAME)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an existing database without loading")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="a query slower than this many seconds counts as this long"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
