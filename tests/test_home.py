from __future__ import annotations

import sqlite3

from aiohttp.test_utils import TestClient


async def test_healthz(client: TestClient):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_says_when_the_database_cannot_be_read(client: TestClient, db_path: str):
    conn = sqlite3.connect(db_path)
    conn.executescript("PRAGMA foreign_keys = OFF; DROP TABLE restaurant;")
    conn.close()
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "database": "error"}


async def test_the_front_door_leads_to_the_dashboard(client: TestClient):
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/dashboard"
