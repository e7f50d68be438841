"""The typed keys under which the application keeps its resources."""

from __future__ import annotations

from aiohttp import web

from .auth import KeyService
from .bus import Publisher
from .db import Database
from .hub import Hub
from .limits import GuestTaps, PerAddress, SharedLimits
from .render import Broadcast, Renderer
from .services.bulk import BulkService
from .services.floor import FloorService
from .services.reports import ReportService
from .services.restaurants import RestaurantService
from .services.sections import SectionService
from .services.tables import TableService
from .services.waiters import WaiterService
from .settings import Settings

settings_key = web.AppKey("settings", Settings)
db_key = web.AppKey("db", Database)
tables_key = web.AppKey("tables", TableService)
floor_key = web.AppKey("floor", FloorService)
bulk_key = web.AppKey("bulk", BulkService)
sections_key = web.AppKey("sections", SectionService)
reports_key = web.AppKey("reports", ReportService)
restaurants_key = web.AppKey("restaurants", RestaurantService)
api_keys_key = web.AppKey("api_keys", KeyService)
waiters_key = web.AppKey("waiters", WaiterService)
hub_key = web.AppKey("hub", Hub)
renderer_key = web.AppKey("renderer", Renderer)
broadcast_key = web.AppKey("broadcast", Broadcast)
bus_key = web.AppKey("bus", Publisher)  # in-process, or Redis between workers
sign_in_failures_key = web.AppKey("sign_in_failures", PerAddress)  # failed sign-ins, per client address
request_limiter_key = web.AppKey("request_limiter", PerAddress)  # HTTP changes, per API key
guest_taps_key = web.AppKey("guest_taps", GuestTaps)
limits_key = web.AppKey("limits", SharedLimits)  # the limits above, in Redis for every worker (or this one's)
client_address_key = web.RequestKey("client_address", str)  # behind a proxy: the client's, for the access log
