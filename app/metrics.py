"""The Prometheus metrics, declared once (docs/metrics.md says what each means).

Module-level objects, as prometheus_client intends: the code that does a thing counts it
(the hub and the sockets what they send and close, app/web/actions.py the actions, app/db.py
the commits, app/bus.py the bus). Labels are small fixed sets (action, outcome, reason...):
never a restaurant, a table, a key or a person.

With several workers each process writes its values to files that one scrape adds up
(prometheus_client's multiprocess mode): a gauge says there how the workers' values
combine (`multiprocess_mode`), and only live processes' gauges count.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics import MetricWrapperBase

# set by the supervisor of several workers (app/workers.py): the library reads it as this module is imported
SHARED_DIRECTORY = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# protocol answers in milliseconds; a commit waits for an fsync: 0.5 ms .. 2.5 s
SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# a guest's call waits for a waiter in seconds to minutes
WAITED = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

OUTCOMES = ("ok", "client_error", "server_error", "refused", "rate_limited")
REFUSED_REASONS = ("limit", "unauthorized", "origin", "shutting_down")
CLOSED_REASONS = ("client", "heartbeat", "slow_consumer", "revoked", "made_room", "shutdown")
SYNC_ANSWERS = ("replay_buffer", "replay_log", "snapshot")

BUILD_INFO = Gauge("maitre_build_info", "Always 1; the running version in its label.", ["version"],
                   multiprocess_mode="livemax")
DASHBOARDS_OPEN = Gauge("maitre_dashboards_open", "Dashboard sockets open now.", multiprocess_mode="livesum")
CONNECTIONS_REFUSED = Counter("maitre_connections_refused", "Dashboard sockets turned away, by reason.", ["reason"])
SOCKETS_CLOSED = Counter("maitre_sockets_closed", "Dashboard sockets closed, by reason.", ["reason"])

ACTIONS = Counter("maitre_actions", "Changes asked for (socket and HTTP), by action and outcome.",
                  ["action", "outcome"])
ACTION_COMMIT_SECONDS = Histogram("maitre_action_commit_seconds",
                                  "From an action's receipt to its commit, for the ones that succeed.",
                                  ["action"], buckets=SECONDS)
ACTION_FANOUT_SECONDS = Histogram("maitre_action_fanout_seconds",
                                  "From a change's commit to the last write of its update to this process's "
                                  "dashboard sockets.", buckets=SECONDS)

DB_COMMIT_BATCH_SIZE = Histogram("maitre_db_commit_batch_size", "Writes committed together in one transaction.",
                                 buckets=(1, 2, 4, 8, 16, 32, 64, 128))
DB_COMMIT_SECONDS = Histogram("maitre_db_commit_seconds", "One transaction of writes, begin to commit.",
                              buckets=SECONDS)
DB_BUSY_RETRIES = Counter("maitre_db_busy_retries", "Commits that failed on a busy or locked database (SQLITE_BUSY): "
                          "another process held the write lock through SQLite's own retries (5 s).")

MESSAGES_SENT = Counter("maitre_messages_sent", "Frames written to dashboard sockets (updates, replies, "
                        "announcements; not the snapshot a socket opens with).")
SENT_BYTES = Counter("maitre_sent_bytes", "Bytes of the frames counted in maitre_messages_sent_total.")
SYNCS = Counter("maitre_syncs", "Dashboards' syncs, by how they were answered.", ["answer"])

GUEST_REQUESTS = Counter("maitre_guest_requests", "Guests' calls made, by kind.", ["kind"])
CALLS_WAITING = Gauge("maitre_calls_waiting", "Guests' calls not yet seen to (read from the database at scrape).",
                      multiprocess_mode="livemostrecent")
CALL_CLAIM_SECONDS = Histogram("maitre_call_claim_seconds", "From a guest's call to a waiter's On my way.",
                               buckets=WAITED)
CALL_RESOLVE_SECONDS = Histogram("maitre_call_resolve_seconds", "From a guest's call to its being seen to.",
                                 buckets=WAITED)

BUS_PUBLISHED = Counter("maitre_bus_published", "Messages published on Redis for the other workers.")
BUS_RECEIVED = Counter("maitre_bus_received", "Other workers' messages received from Redis.")
BUS_LAG_SECONDS = Histogram("maitre_bus_lag_seconds", "From a message's publishing (its time in the message) to "
                            "its receipt by another worker.", buckets=SECONDS)
BUS_ON_REDIS = Gauge("maitre_bus_on_redis", "1 while this worker hears other workers through Redis, 0 otherwise.",
                     multiprocess_mode="liveall")
GAP_FILLS = Counter("maitre_gap_fills", "Reads of the audit log to fill a gap in a restaurant's versions.")


def _version() -> str:
    try:
        return version("maitre")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


BUILD_INFO.labels(_version()).set(1)
for _label, _values in ((CONNECTIONS_REFUSED, REFUSED_REASONS), (SOCKETS_CLOSED, CLOSED_REASONS),
                        (SYNCS, SYNC_ANSWERS), (GUEST_REQUESTS, ("call_waiter", "ask_for_bill"))):
    for _value in _values:  # every series from the start, at 0: a rate needs a value before the first event
        _label.labels(_value)


def registry() -> CollectorRegistry:
    """What a scrape reports. One process: its metrics and the library's default process collectors. Several
    workers (app/workers.py gives them PROMETHEUS_MULTIPROC_DIR): every worker's metrics, added up from their
    files, whichever worker answers; no process collectors (they would describe only the one answering)."""
    if SHARED_DIRECTORY is None:
        return REGISTRY
    workers = CollectorRegistry()
    multiprocess.MultiProcessCollector(workers, SHARED_DIRECTORY)
    return workers


class Off:
    """Every metric, once they are switched off: takes any labels, counts nothing."""

    def labels(self, *values: str, **labels: str) -> Off:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def time(self) -> AbstractContextManager[None]:
        return nullcontext()


def switch_off() -> None:
    """The setting `metrics` off (MAITRE_METRICS=off), for this process: each metric above becomes `Off`. The
    code counts through this module's names (`metrics.ACTIONS`, looked up at each use), so none counts any more."""
    for name, value in list(globals().items()):
        if isinstance(value, MetricWrapperBase):
            globals()[name] = Off()


def outcome_of(code: str | None) -> str:
    """An action's outcome label from its result's code (None: it succeeded)."""
    if code is None:
        return "ok"
    if code == "forbidden":
        return "refused"
    if code == "rate_limited":
        return "rate_limited"
    return "server_error" if code == "internal_error" else "client_error"
