"""Several server processes on one port: `run.py serve --workers N` (MAITRE_WORKERS).

By the time `serve` comes here, the process `run.py` started has done what one server does
before serving, once (migrations, the demo restaurant, its key printed: cli.first_start). It
becomes the supervisor: it starts N workers, each the whole server (`web.run_app(create_app(
settings))`) listening on the same port with SO_REUSEPORT, so the kernel spreads new connections
over them; each has its own database connections, and SQLite serialises their writes. The
supervisor serves nothing itself. It prints aiohttp's "Running on" line once every worker
listens, starts again a worker that dies (with a back-off; when one keeps dying within seconds of
its start, it stops them all and exits non-zero), and on SIGINT or SIGTERM stops every worker with
SIGTERM and waits for them: each closes its dashboards' sockets with 1001, so the tablets
reconnect, then its database.

The workers are started with multiprocessing's "spawn" context, not as `run.py` subprocesses nor
forked: each gets the settings the supervisor parsed as they are (pickled, not parsed again from
flags and environment), each is a fresh interpreter (a fork would copy the supervisor's state after
first_start ran an event loop and SQLite's threads), and multiprocessing has what supervising
needs: a sentinel that is ready when a worker ends, its exit status, a pipe on which it says it
listens, and in the worker the supervisor's sentinel, so a worker whose supervisor was killed
stops rather than holding the port. The cost is one helper process beside the workers,
multiprocessing's resource tracker.

The workers keep their metrics in one directory the supervisor makes for them (shared_metrics), so a
scrape of /metrics, whichever worker answers it, adds up every worker's; the supervisor tells the
directory when a worker has died, so its open dashboards leave the gauges.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web
from prometheus_client import multiprocess

from . import create_app, metrics
from .settings import Settings
from .watch import WATCH_SECONDS
from .web.security import AccessLogger, QuietMalformedRequests

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
QUICK_DEATH_SECONDS = 10  # a worker that ends sooner than this after its start died at start
QUICK_DEATHS_IN_A_ROW = 5  # in one worker's place: the fifth stops the server
FIRST_BACK_OFF_SECONDS = 0.25  # before starting again a worker that died at start; doubled each time in a row


class WorkersFailed(Exception):
    """The workers cannot serve: said in one line; the workers' own errors are in the log above it."""


def configure_logging(level: str, worker: int | None = None) -> None:
    """The server's log, on stderr; a worker's lines say which worker wrote them."""
    who = f"worker {worker} " if worker is not None else ""
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(QuietMalformedRequests())


def serve(settings: Settings) -> int:
    """Run `settings.workers` workers on the one port until SIGINT or SIGTERM; returns the exit status."""
    if settings.port == 0:
        raise WorkersFailed("several workers share one port: give MAITRE_PORT (--port) a number, not 0")
    refuse_a_taken_port(settings.host, settings.port)
    if not settings.redis_url:
        log.warning(
            "%d workers and no MAITRE_REDIS_URL: a change made through one worker reaches the dashboards on the "
            "others from the database, up to %s s later; and each worker counts the connection limits "
            "(MAITRE_MAX_CONNECTIONS_PER_RESTAURANT, MAITRE_MAX_CONNECTIONS_PER_KEY) over its own dashboards "
            "only, so a restaurant may hold up to %d times each (docs/scaling.md)",
            settings.workers, WATCH_SECONDS, settings.workers)
    # Before the workers start: what they must all share is set up here, once. Each worker starts with
    # this process's environment as it is then.
    with shared_metrics() as directory:
        return Supervisor(settings, directory).run()


@contextmanager
def shared_metrics() -> Iterator[str]:
    """A fresh, empty directory in which every worker keeps its metrics (prometheus_client's multiprocess
    mode), so that one scrape of any worker reports them all; removed when the workers have stopped.

    The library reads PROMETHEUS_MULTIPROC_DIR when app.metrics is imported: a spawned worker imports it
    afresh, with the environment set here. A directory left by an earlier server is never reused: its
    counters would be added to this one's.
    """
    with tempfile.TemporaryDirectory(prefix="maitre-metrics-") as directory:
        os.environ[MULTIPROC_DIR] = directory
        try:
            yield directory
        finally:
            del os.environ[MULTIPROC_DIR]


def refuse_a_taken_port(host: str, port: int) -> None:
    """Raise OSError, as one server would, if something listens on the port already.

    The workers bind with SO_REUSEPORT, which would let them share the port with any other such
    socket of this user: another Maître's workers there would silently take some of the tablets.
    A socket without it cannot bind a port something listens on, so one is bound here first.
    """

    async def bind() -> None:
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host, port)
        server.close()
        await server.wait_closed()

    asyncio.run(bind())


# -- in each worker ---------------------------------------------------------------------------------------------


def run_worker(settings: Settings, number: int, listening: Connection) -> None:
    """One worker: the whole server on the shared port. aiohttp's "Running on" line, which it prints once
    it listens, goes to the supervisor on `listening` instead."""
    configure_logging(settings.log_level, number)
    if not settings.metrics:
        metrics.switch_off()
    loop = asyncio.new_event_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop_once, loop)
    supervisor = multiprocessing.parent_process()
    assert supervisor is not None, "a worker is started by the supervisor"
    loop.add_reader(supervisor.sentinel, supervisor_gone, loop, supervisor.sentinel)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, reuse_port=True,
                access_log_class=AccessLogger, handle_signals=False, print=listening.send, loop=loop)


def stop_once(loop: asyncio.AbstractEventLoop) -> None:
    """Stop as aiohttp's own signal handler does (GracefulExit: sockets closed with 1001, then the
    database). Only the first signal counts: under systemd, SIGTERM reaches every process of the
    service and the supervisor passes it on too, and a second GracefulExit would cut the first short."""
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, lambda: None)
    raise web.GracefulExit()


def supervisor_gone(loop: asyncio.AbstractEventLoop, sentinel: int) -> None:
    loop.remove_reader(sentinel)
    log.warning("the supervisor has ended: stopping")
    stop_once(loop)


# -- in the supervisor ------------------------------------------------------------------------------------------


@dataclass
class Worker:
    number: int
    process: BaseProcess
    listening: Connection  # the worker sends aiohttp's "Running on" line on it once it listens
    started: float
    serving: bool = False


class Supervisor:
    def __init__(self, settings: Settings, metrics: str) -> None:
        self.settings = settings
        self.metrics = metrics  # the workers' shared metrics directory
        self.context = multiprocessing.get_context("spawn")
        self.workers: dict[int, Worker] = {}
        self.quick_deaths: dict[int, int] = {}  # in a row, by worker number
        self.restart_at: dict[int, float] = {}  # workers to start again, by number: when (time.monotonic())
        self.all_served = False  # every worker has listened once: "Running on" was printed
        self.signals: list[int] = []
        self.wake, self.woken = socket.socketpair()  # a signal writes to `woken`, so `wait` returns

    def run(self) -> int:
        for sock in (self.wake, self.woken):
            sock.setblocking(False)
        handlers = {signum: signal.signal(signum, self.signalled) for signum in STOP_SIGNALS}
        wakeup = signal.set_wakeup_fd(self.woken.fileno())
        try:
            try:
                for number in range(1, self.settings.workers + 1):
                    self.start(number)
                while not self.signals:
                    self.step()
            except WorkersFailed:
                self.stop(signal.SIGTERM)
                raise
            return self.stop(self.signals[0])
        finally:
            signal.set_wakeup_fd(wakeup)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.wake.close()
            self.woken.close()

    def signalled(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def start(self, number: int) -> None:
        receiving, sending = self.context.Pipe(duplex=False)
        process = self.context.Process(target=run_worker, args=(self.settings, number, sending),
                                       name=f"worker {number}")
        process.start()
        sending.close()  # the worker has its own copy: its end closes the pipe
        self.workers[number] = Worker(number, process, receiving, time.monotonic())
        log.info("worker %d started (pid %d)", number, pid(self.workers[number]))

    def step(self) -> None:
        """Wait for a worker to listen or end, a signal, or the time to start a worker again; handle it."""
        waiting = [worker.listening for worker in self.workers.values() if not worker.listening.closed]
        timeout = max(0, min(self.restart_at.values()) - time.monotonic()) if self.restart_at else None
        ready = wait([self.wake, *waiting, *(worker.process.sentinel for worker in self.workers.values())], timeout)
        if self.wake in ready:
            self.wake.recv(64)
        for worker in list(self.workers.values()):
            if worker.listening in ready:
                self.listens(worker)
            if worker.process.sentinel in ready:
                self.ended(worker)
        for number, when in list(self.restart_at.items()):
            if when <= time.monotonic():
                del self.restart_at[number]
                self.start(number)

    def listens(self, worker: Worker) -> None:
        try:
            running_on = worker.listening.recv()
        except EOFError:  # it ended before it listened; its sentinel says so
            worker.listening.close()
            return
        worker.listening.close()
        worker.serving = True
        if self.all_served:
            log.info("worker %d (pid %d) is serving again", worker.number, pid(worker))
        elif all(other.serving for other in self.workers.values()) and len(self.workers) == self.settings.workers:
            self.all_served = True
            log.info("%d workers serving", self.settings.workers)
            print(running_on, flush=True)

    def ended(self, worker: Worker) -> None:
        worker.process.join()
        worker.listening.close()
        del self.workers[worker.number]
        # its gauges (dashboards open, on Redis) leave every scrape; its counters stay in the sums
        multiprocess.mark_process_dead(pid(worker), self.metrics)
        lived = time.monotonic() - worker.started
        how = exit_status(worker.process.exitcode)
        if not self.all_served:
            raise WorkersFailed(f"worker {worker.number} (pid {pid(worker)}) {how} before the server could start "
                                f"(see the log above)")
        quick = self.quick_deaths.get(worker.number, 0) + 1 if lived < QUICK_DEATH_SECONDS else 0
        self.quick_deaths[worker.number] = quick
        if quick >= QUICK_DEATHS_IN_A_ROW:
            raise WorkersFailed(f"worker {worker.number} (pid {pid(worker)}) {how}: {quick} times in a row, each "
                                f"within {QUICK_DEATH_SECONDS} s of its start (see the log above)")
        delay = FIRST_BACK_OFF_SECONDS * 2 ** (quick - 1) if quick else 0
        log.error("worker %d (pid %d) %s after %.1f s; starting it again in %s s",
                  worker.number, pid(worker), how, lived, delay)
        self.restart_at[worker.number] = time.monotonic() + delay

    def stop(self, signum: int) -> int:
        """Stop every worker with SIGTERM, whichever of SIGINT or SIGTERM `signum` was (a worker still starting,
        its handler not yet set, then ends quietly rather than with a KeyboardInterrupt), and wait for them
        all; another signal meanwhile kills those still running. Returns 0 if those serving stopped cleanly."""
        self.restart_at.clear()
        log.info("%s: stopping the workers (%d running)", signal.Signals(signum).name, len(self.workers))
        for worker in self.workers.values():
            worker.process.terminate()
        signals, clean = len(self.signals), True
        while self.workers:
            ready = wait([self.wake, *(worker.process.sentinel for worker in self.workers.values())])
            if self.wake in ready:
                self.wake.recv(64)
            if len(self.signals) > signals:
                signals = len(self.signals)
                log.warning("signalled again: killing the %d workers still running", len(self.workers))
                for worker in self.workers.values():
                    worker.process.kill()
            for worker in list(self.workers.values()):
                if worker.process.sentinel in ready:
                    worker.process.join()
                    worker.listening.close()
                    del self.workers[worker.number]
                    if worker.process.exitcode != 0 and worker.serving:
                        clean = False
                        log.error("worker %d (pid %d) %s as it stopped", worker.number, pid(worker),
                                  exit_status(worker.process.exitcode))
        log.info("every worker has stopped")
        return 0 if clean else 1


def pid(worker: Worker) -> int:
    assert worker.process.pid is not None, "started"
    return worker.process.pid


def exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"
