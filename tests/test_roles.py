"""Who may do what: every role against every operation, in the service layer (the README's table)."""

from __future__ import annotations

import pytest

from app.services.bulk import BulkService, Item
from app.services.core import Actor
from app.services.floor import FloorService
from app.services.sections import SectionService
from app.services.tables import TableService
from app.services.waiters import WaiterService

# the operations, as (service, method, arguments after the actor); ids are filled in from the place
SERVE = ["seat_table", "set_guest_count", "set_note", "join_tables", "split_table", "close_table", "restore_table",
         "move_table", "claim", "resolve"]
MANAGE = ["disable_table", "enable_table", "bulk"]
FLOOR = ["add_table", "set_table", "remove_table", "rotate_qr", "set_section"]
MAY = {"admin": SERVE + MANAGE + FLOOR, "waiter": SERVE, "viewer": []}


@pytest.fixture
def services(db, settings):
    return {"tables": TableService(db, settings), "floor": FloorService(db, settings),
            "waiters": WaiterService(db, settings), "sections": SectionService(db, settings),
            "bulk": BulkService(db, settings)}


def call(services, actor: Actor, operation: str, ids: dict[str, int]):
    tables, floor, waiters = services["tables"], services["floor"], services["waiters"]
    one, two = ids["1"], ids["2"]
    return {
        "seat_table": lambda: tables.seat_table(actor, one),
        "set_guest_count": lambda: tables.set_guest_count(actor, one, 3),
        "set_note": lambda: tables.set_note(actor, one, "window"),
        "join_tables": lambda: tables.join_tables(actor, one, two),
        "split_table": lambda: tables.split_table(actor, two),
        "close_table": lambda: tables.close_table(actor, one),
        "restore_table": lambda: tables.restore_table(actor, one),
        "move_table": lambda: tables.move_table(actor, one, two),
        "claim": lambda: waiters.claim(actor, 1),
        "resolve": lambda: waiters.resolve(actor, 1),
        "disable_table": lambda: tables.disable_table(actor, ids["5"]),
        "enable_table": lambda: tables.enable_table(actor, ids["5"]),
        "bulk": lambda: services["bulk"].bulk(actor, [Item({"action": "close_table"}, tables.close_table(actor, one))]),
        "add_table": lambda: floor.add_table(actor, "T9"),
        "set_table": lambda: floor.set_table(actor, ids["6"], seats=6),
        "remove_table": lambda: floor.remove_table(actor, ids["6"]),
        "rotate_qr": lambda: floor.rotate_qr(actor, ids["6"]),
        "set_section": lambda: services["sections"].set_section(actor, "Sam", ["Main room"]),
    }[operation]()


@pytest.mark.parametrize("role", ["admin", "waiter", "viewer"])
@pytest.mark.parametrize("operation", SERVE + MANAGE + FLOOR)
async def test_every_role_against_every_operation(services, bistro_place, keys, role, operation):
    record, _ = await keys.add("bistro", f"{role} key", role, name="Sam" if role == "waiter" else None)
    actor = Actor(bistro_place.actor.restaurant_id, f"{role} key", role, record["id"])
    result = await call(services, actor, operation, bistro_place.ids)
    if operation in MAY[role]:
        assert result.code != "forbidden", (role, operation, result)
    else:
        assert result.code == "forbidden", (role, operation, result)
        expected = "may watch" if role == "viewer" else "Only an admin key"
        assert expected in (result.detail or "")
