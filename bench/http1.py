"""A lean HTTP/1.1 load sender for bench/ingest.py: one keep-alive connection per sender over asyncio
streams, each request's head and body written as one buffer, the answer read by its Content-Length.

The benchmark's senders run on the same cores as the app and PostgreSQL, so the sender's own CPU is in
every latency the benchmark reports. httpx2 spends most of its per-request CPU on what a load generator
does not need (URL and header models, the connection pool's bookkeeping, h11's state machine). This
sends the same requests (method, path, headers, body) and counts the same latency: from when a batch
was due until its whole answer has been read. Httpx2Client puts httpx2 behind the same interface
(`bench/ingest.py --sender httpx2`), for comparison.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx2


class Answer:
    """What the benchmark reads of an answer: its status and its JSON body."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()  # one request at a time on a connection

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # A connection the server closed while idle (keep-alive timeout) is replaced before use.
        if self.reader is None or self.writer is None or self.reader.at_eof() or self.writer.is_closing():
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def request(self, head: bytes, body: bytes) -> Answer:
        async with self.lock:
            reader, writer = await self._open()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status_line, _, header_block = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            keep_alive = True
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked answers are not read by this sender")
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep_alive = False
            answer = Answer(status, await reader.readexactly(length) if length else b"")
            if not keep_alive:
                self.close()
            return answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Client:
    """POSTs through `connections` keep-alive connections, chosen by the caller (one per sender)."""

    def __init__(self, base_url: str, connections: int) -> None:
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = f"{host}:{port}"
        self.connections = [_Connection(host, port) for _ in range(connections)]
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}

    def _head(self, path: str, headers: dict[str, str]) -> bytes:
        """The request line and headers (all but Content-Length), encoded once per path and headers."""
        key = (path, tuple(headers.items()))
        head = self._heads.get(key)
        if head is None:
            lines = [f"POST {path} HTTP/1.1", f"Host: {self.host_header}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            head = self._heads[key] = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        return head

    async def post(self, connection: int, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        conn = self.connections[connection % len(self.connections)]
        return await conn.request(self._head(path, headers), body)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            conn.close()


class Httpx2Client:
    """httpx2 behind Client's interface: the sender the benchmark used first (--sender)."""

    def __init__(self, base_url: str, connections: int) -> None:
        limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=30)

    async def post(self, connection: int, path: str, body: bytes, headers: dict[str, str]) -> httpx2.Response:
        return await self.client.post(path, content=body, headers=headers)

    async def __aenter__(self) -> Httpx2Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
