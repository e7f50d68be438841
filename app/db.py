"""The SQLite database: connections, transactions and migrations.

All writes go through one writer connection. A write is a plain function of a
`sqlite3.Connection` that runs, whole, on that connection's thread: operations are
serialised and never interleave. Each runs inside its own savepoint within a
`BEGIN IMMEDIATE ... COMMIT`, so it is atomic on its own: an exception rolls back that
operation and nothing else. Writes that queue up while a commit is in progress are
committed together in the next transaction (group commit): one fsync for the batch
instead of one per operation, and still no caller hears of its write before the commit
that makes it durable. An idle server commits every write on its own, at once.

Reads run the same way on a second connection; in WAL mode they see the last committed
state and do not wait for the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from . import metrics

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000
BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """2026-11-26T11:42:58.149Z: UTC, to the millisecond (isoformat, not strftime: a change formats several, and
    strftime costs five times as much)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """A time as format_time writes it (fromisoformat: strptime costs 50 times as much)."""
    if not text.endswith("Z"):
        raise ValueError(f"not a UTC time: {text!r}")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def milliseconds(text: str) -> int:
    """A time as format_time writes it, in whole milliseconds since 1970 (how reports' summaries keep times)."""
    return (parse_time(text) - EPOCH) // timedelta(milliseconds=1)


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
    # A migration may rebuild a table others refer to (SQLite's way to change a constraint): foreign
    # keys are off meanwhile (the pragma is ignored inside a transaction), and checked before each commit.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for number, script in migrations():
            if target is not None and number > target:
                break
            _apply(conn, number, script)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _apply(conn: sqlite3.Connection, number: int, script: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
            conn.execute("ROLLBACK")
            return
        for statement in statements(script):
            conn.execute(statement)
        broken = conn.execute("PRAGMA foreign_key_check").fetchone()
        if broken is not None:
            raise sqlite3.IntegrityError(f"migration {number} leaves a broken reference in {broken[0]}")
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def run_in_transaction(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
    conn.execute(begin)
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def run_batch(conn: sqlite3.Connection, batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Outcome]:
    """Each write in its own savepoint, all in one transaction: [(True, result) or (False, exception)]."""
    outcomes: list[Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for fn, args in batch:
            conn.execute("SAVEPOINT operation")
            try:
                outcomes.append((True, fn(conn, *args)))
            except Exception as error:
                conn.execute("ROLLBACK TO operation")
                outcomes.append((False, error))
            conn.execute("RELEASE operation")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return outcomes


Outcome = tuple[bool, Any]
BATCH_AT_MOST = 128


class Database:
    """The writer and reader connections to one SQLite file."""

    def __init__(self, path: str, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._queued: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None
        self.writes = 0  # operations committed (app/collect.py sweeps when it stops growing)

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
        """Run `fn(conn, *args)` atomically and durably; its exception rolls it (only it) back and propagates."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((fn, args, done))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_queued())
        return await done

    async def _commit_queued(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[:BATCH_AT_MOST], self._queued[BATCH_AT_MOST:]
                metrics.DB_COMMIT_BATCH_SIZE.observe(len(batch))
                started = time.perf_counter()
                try:
                    outcomes = await _on_thread(self._writer, run_batch, [(fn, args) for fn, args, _ in batch])
                    metrics.DB_COMMIT_SECONDS.observe(time.perf_counter() - started)
                except BaseException as error:  # the commit itself failed: none of the batch was written
                    # SQLite waited BUSY_TIMEOUT_MS for another process's write lock, then gave up
                    if isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF in BUSY:
                        metrics.DB_BUSY_RETRIES.inc()
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error if isinstance(error, Exception) else RuntimeError(error))
                    if not isinstance(error, Exception):
                        raise
                    continue
                self.writes += len(batch)
                for (_, _, done), (ok, value) in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue
                    if ok:
                        done.set_result(value)
                    else:
                        done.set_exception(value)
        finally:
            self._committing = None

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` against one consistent snapshot of the database."""
        return await _on_thread(self._reader, run_in_transaction, "BEGIN", fn, *args)

    async def read_aside(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` against a snapshot of its own, on a connection opened for it in a worker thread.

        For long reads (a report over months): they hold up none of the dashboards' reads on the shared
        connection, and several can run at once (SQLite lets go of the GIL while it works).
        """
        return await asyncio.to_thread(_read_aside, self.path, fn, *args)

    async def ping(self) -> None:
        """Read one row; raises sqlite3.Error when the database cannot answer (the health check)."""
        await self.read(_ping)

    async def take_write(self) -> None:
        """Take the write lock and commit nothing (the readiness check): raises when no write could be made."""
        await self.write(_nothing)

    async def close(self) -> None:
        if self._committing is not None:
            await self._committing
        await self._reader.close()
        await self._writer.close()


def _read_aside(path: str, fn: Callable[..., T], *args: Any) -> T:
    conn = configure(sqlite3.connect(path, isolation_level=None))
    conn.execute("PRAGMA mmap_size = 268435456")  # a fresh connection has no page cache: read the file in place
    try:
        return run_in_transaction(conn, "BEGIN", fn, *args)
    finally:
        conn.close()


def _nothing(conn: sqlite3.Connection) -> None:
    pass


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1 FROM restaurant LIMIT 1").fetchall()


async def _on_thread(connection: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    # The one place that uses aiosqlite's private API (Connection._execute and Connection._conn):
    # its public methods make one trip to the connection's thread per statement, and this runs a
    # whole operation (or a group commit's batch) in one trip. tests/test_db.py fails with a clear
    # message if a newer aiosqlite changes either; setup.cfg pins the versions that test passed on.
    return await connection._execute(lambda: fn(connection._conn, *args))

