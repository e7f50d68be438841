"""Maître: a live table dashboard for small restaurants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp.web import Application

from .auth import KeyService
from .db import Database
from .keys import api_keys_key, db_key, restaurants_key, settings_key, tables_key
from .services.restaurants import RestaurantService
from .services.tables import TableService
from .settings import Settings
from .web import routes  # the subpackage app.web; aiohttp's web is not imported by that name here

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_DIR / "templates"
STATIC_DIR = PROJECT_DIR / "static"


def create_app(settings: Settings) -> Application:
    app = Application()
    app[settings_key] = settings
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    app.cleanup_ctx.append(database_ctx)
    routes.setup(app, STATIC_DIR)
    return app


async def database_ctx(app: Application) -> AsyncIterator[None]:
    """Open (and migrate) the database and the services built on it; close it on shutdown."""
    db = await Database.open(app[settings_key].db_path)
    app[db_key] = db
    app[tables_key] = TableService(db, app[settings_key])
    app[restaurants_key] = RestaurantService(db, app[settings_key])
    app[api_keys_key] = KeyService(db)
    yield
    await db.close()
