"""Every setting of the server, declared once as data.

Each field of `Settings` is one setting: its default, its help text and how its
text form is parsed. The environment variable (`MAITRE_` + the name in capitals)
and the `run.py serve` flag are derived from the same declaration, and the README
documents each one (tests/test_settings.py checks that).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "MAITRE_"
EVERY_ADDRESS = ("0.0.0.0", "::", "")  # hosts that listen on every address of the machine: none to print
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingError(ValueError):
    """A setting's value cannot be used; the message names the setting."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{text} is not a positive whole number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{text} is not a positive number")
    return value


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"{text!r} is not on or off")
    return value in ("on", "true", "1", "yes")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"{text} is not a port number (0-65535)")
    return value


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        if "*" in origin or "://" not in origin:
            raise ValueError(f"{origin!r} is not an exact origin such as https://tablet.example")
    return origins


def _public_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not an http:// or https:// address")
    return url


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for part in (part.strip() for part in text.split(",")):
        if part:
            try:
                networks.append(ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or a network such as 10.0.0.0/8") from None
    return tuple(networks)


def _redis_url(text: str) -> str:
    url = text.strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{text!r} is not a redis://, rediss:// or unix:// address")
    return url


def valid_time_zone(text: str) -> str:
    """An IANA time zone name such as Europe/Paris (the machine's tz database, Debian's tzdata)."""
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a time zone such as Europe/Paris or UTC") from None
    return name


def _clock_time(text: str) -> str:
    """HH:MM, 00:00 to 23:59 (5:30 is 05:30)."""
    hours, colon, minutes = text.strip().partition(":")
    if colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24 and int(minutes) < 60:
        return f"{int(hours):02d}:{minutes}"
    raise ValueError(f"{text!r} is not a time of day such as 04:00")


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def setting(default: Any, help: str, parse: Callable[[str], Any] = str, flag: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "parse": parse, "flag": flag})


@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", "Address the server listens on.")
    port: int = setting(8080, "Port the server listens on.", _port)
    db_path: str = setting("maitre.db", "Path of the SQLite database file.", flag="--db")
    restore_window_minutes: int = setting(
        30, "How long after a close the table can still be restored, in minutes (a restaurant may set its own).",
        _positive_int)
    idle_warning_minutes: int = setting(
        20, "Minutes without activity after which an occupied table shows a warning (a restaurant may set its own).",
        _positive_int)
    idle_alert_minutes: int = setting(
        40, "Minutes without activity after which an occupied table shows an alert (a restaurant may set its own).",
        _positive_int)
    claim_within_seconds: int = setting(
        120, "Seconds a guest's call may wait unclaimed (nobody tapped On my way) before it shows as overdue to "
        "every waiter and admin.", _positive_int)
    time_zone: str = setting(
        "UTC", "The restaurant's time zone (an IANA name such as Europe/Paris), in which reports count hours and "
        "days (a restaurant may set its own).", valid_time_zone)
    day_starts_at: str = setting(
        "04:00", "When a service day starts, in the restaurant's time zone: reports count a service that runs past "
        "midnight in the day it began.", _clock_time)
    max_connections_per_restaurant: int = setting(
        20, "Live dashboard connections allowed per restaurant at once.", _positive_int)
    max_connections_per_key: int = setting(
        5, "Live dashboard connections one key (its sign-ins included) may hold at once, so no one key can "
        "take all of its restaurant's places.", _positive_int)
    session_hours: float = setting(
        12, "How long a dashboard sign-in lasts, in hours.", _positive_float)
    heartbeat_seconds: float = setting(
        30, "Seconds between the server's pings on each dashboard socket; a peer that does not answer "
        "in time is dropped.", _positive_float)
    ws_compression: bool = setting(
        False, "Offer per-message compression (permessage-deflate) on dashboard sockets: on or off. "
        "Off by default: see docs/benchmarks.md for its memory cost.", _switch)
    public_url: str = setting(
        "", "The address guests' phones reach this server at, printed in the tables' QR codes (default: "
        "the address the tablet printing them reached the server at; the command line uses http://HOST:PORT).",
        _public_url)
    allowed_origins: tuple[str, ...] = setting(
        (), "Extra exact origins (comma-separated, no wildcards) allowed to open the dashboard socket "
        "besides the server's own.", _origins)
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = setting(
        (), "Addresses or networks (comma-separated) of the reverse proxies in front of the server: only from "
        "them are X-Forwarded-For/-Proto/-Host and Forwarded believed (see docs/deploy.md).", _networks)
    workers: int = setting(
        1, "Server processes sharing the port (and the database file); more than one wants MAITRE_REDIS_URL "
        "(docs/scaling.md).", _positive_int)
    redis_url: str = setting(
        "", "Redis carrying changes between workers (redis://127.0.0.1:6379/0); empty: no Redis, each worker "
        "learns of the others' changes from the database within half a second.", _redis_url)
    metrics_token: str = setting(
        "", "Bearer token that lets a client other than this machine read GET /metrics (Prometheus' "
        "`authorization` credentials); empty: only loopback clients may.")
    metrics: bool = setting(
        True, "Prometheus metrics at /metrics: on or off (nothing is counted, and /metrics answers 404). "
        "On by default: they cost little (docs/benchmarks.md).", _switch)
    log_level: str = setting("INFO", f"Log level: one of {', '.join(LOG_LEVELS)}.", _log_level)

    def __post_init__(self) -> None:
        if self.idle_warning_minutes >= self.idle_alert_minutes:
            raise SettingError("idle_warning_minutes must be smaller than idle_alert_minutes")

    def guest_base(self, origin: str | None = None) -> str:
        """Where the guests' pages are, as the tables' QR codes print it.

        The public URL if set; else `origin`, the scheme and host the tablet printing the codes
        reached the server by (behind a trusted proxy, the ones the proxy names); else the
        server's own address. A server listening on every address (0.0.0.0, ::) has none of its
        own to give: without a public URL or an origin, SettingError says what to set.
        """
        if self.public_url or origin:
            return self.public_url or str(origin)
        if self.host in EVERY_ADDRESS:
            raise SettingError(
                f"MAITRE_HOST is {self.host or 'empty'} (every address of this machine), so the address guests' "
                f"phones use is not known here: set MAITRE_PUBLIC_URL to it, e.g. http://192.168.1.20:{self.port}")
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `MAITRE_*` environment variables, then `overrides` (already parsed)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in declared():
            if spec.env in environ:
                values[spec.name] = spec.parse_text(environ[spec.env], source=spec.env)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return replace(cls(), **values)


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any]
    flag: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse_text(self, text: str, source: str) -> Any:
        try:
            return self.parse(text)
        except ValueError as error:
            raise SettingError(f"{source}: {error}") from None


def declared() -> Iterator[SettingSpec]:
    for f in fields(Settings):
        yield SettingSpec(
            name=f.name,
            default=f.default,
            help=f.metadata["help"],
            parse=f.metadata["parse"],
            flag=f.metadata["flag"] or "--" + f.name.replace("_", "-"),
        )
