"""The SQLite database: connections, transactions and migrations.

All writes go through one writer connection. A write is a plain function of a
`sqlite3.Connection` that runs, whole, on that connection's thread inside
`BEGIN IMMEDIATE ... COMMIT`: one trip to the database thread per operation, and
operations never interleave. Reads run the same way on a second connection; in
WAL mode they see the last committed state and do not wait for the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def configure(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Pragmas every connection needs: an acknowledged write survives a power cut."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrations() -> list[tuple[int, str]]:
    """The numbered migration scripts, in order: [(1, sql), (2, sql), ...]."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        number = int(path.name.split("_", 1)[0])
        found.append((number, path.read_text(encoding="utf-8")))
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    return found


def latest_version() -> int:
    return len(migrations())


def statements(script: str) -> Iterator[str]:
    """Split a script into statements (triggers included), so they run inside our transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply the migrations above `PRAGMA user_version` (up to `target`); return the new version.

    Each migration is one transaction that re-reads the version after taking the write
    lock, so a server and a CLI starting together never apply one twice.
    """
    for number, script in migrations():
        if target is not None and number > target:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return conn.execute("PRAGMA user_version").fetchone()[0]


def run_in_transaction(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
    conn.execute(begin)
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Database:
    """The writer and reader connections to one SQLite file."""

    def __init__(self, path: str, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, path: str) -> Database:
        """Open (creating if needed) and migrate the database at `path`.

        Migrating happens once, at start-up, on a plain connection: a file that cannot be
        opened fails here, with SQLite's own error, before any connection thread exists.
        """
        setup = configure(sqlite3.connect(path, isolation_level=None))
        try:
            migrate(setup)
        finally:
            setup.close()
        writer = await aiosqlite.connect(path, isolation_level=None)
        reader = await aiosqlite.connect(path, isolation_level=None)
        await _on_thread(writer, configure)
        await _on_thread(reader, configure)
        return cls(path, writer, reader)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one write transaction; an exception rolls it back and propagates."""
        return await _on_thread(self._writer, run_in_transaction, "BEGIN IMMEDIATE", fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` against one consistent snapshot of the database."""
        return await _on_thread(self._reader, run_in_transaction, "BEGIN", fn, *args)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()


async def _on_thread(connection: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    # aiosqlite runs everything on the connection's own thread; _execute is how its
    # public methods get there. We hand it a whole operation at once (see setup.cfg).
    return await connection._execute(lambda: fn(connection._conn, *args))

