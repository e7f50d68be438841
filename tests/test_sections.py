"""Waiters' sections: areas and single tables given to waiters by name, pushed as table updates."""

from __future__ import annotations

import pytest

from app.services.core import Actor
from app.services.sections import SectionService

from .support import waiters_of


@pytest.fixture
def sections(db, settings) -> SectionService:
    return SectionService(db, settings)




async def test_a_section_is_areas_and_single_tables(sections, tables, terrace):
    place, ids = terrace, terrace.ids
    result = await sections.set_section(place.actor, "Sam", ["Terrace"], [ids["1"]])
    assert result.ok and [update.table["number"] for update in result.updates] == ["1", "5", "6"]
    assert await waiters_of(tables, place) == {"1": "Sam", "2": None, "3": None, "4": None, "5": "Sam", "6": "Sam"}
    # Alex takes the main room; table 1, given to Sam by itself, stays Sam's; table 6 goes to Alex alone
    result = await sections.set_section(place.actor, "Alex", ["Main room"], [ids["6"]])
    assert [update.table["number"] for update in result.updates] == ["2", "3", "4", "6"]
    assert await waiters_of(tables, place) == {"1": "Sam", "2": "Alex", "3": "Alex", "4": "Alex", "5": "Sam",
                                               "6": "Alex"}
    assert await sections.sections(place.actor.restaurant_id) == [
        {"waiter": "Alex", "areas": ["Main room"], "tables": [{"id": ids["6"], "number": "6"}]},
        {"waiter": "Sam", "areas": ["Terrace"], "tables": [{"id": ids["1"], "number": "1"}]}]


async def test_setting_a_section_replaces_the_waiters_last(sections, tables, terrace):
    place, ids = terrace, terrace.ids
    await sections.set_section(place.actor, "Sam", ["Terrace", "Main room"])
    result = await sections.set_section(place.actor, " Sam ", [], [ids["2"]])
    assert [update.table["number"] for update in result.updates] == ["1", "3", "4", "5", "6"]
    assert await waiters_of(tables, place) == {"1": None, "2": "Sam", "3": None, "4": None, "5": None, "6": None}
    cleared = await sections.set_section(place.actor, "Sam")
    assert [update.table["number"] for update in cleared.updates] == ["2"]
    unchanged = await sections.set_section(place.actor, "Sam")
    assert unchanged.ok and unchanged.updates == ()


async def test_a_waiter_with_a_new_phone_keeps_the_section(sections, tables, terrace, keys):
    place = terrace
    await sections.set_section(place.actor, "Sam", ["Terrace"])
    old = next(key for key in await keys.list("bistro") if key["name"] == "Sam")
    await keys.revoke(old["id"])
    await keys.add("bistro", "Sam's new phone", "waiter", name="Sam")
    assert (await waiters_of(tables, place))["5"] == "Sam"
    assert [s["waiter"] for s in await sections.sections(place.actor.restaurant_id)] == ["Alex", "Sam"]


async def test_a_section_outlives_its_waiters_keys_until_cleared(sections, tables, terrace, keys):
    place = terrace
    await sections.set_section(place.actor, "Sam", ["Terrace"])
    for key in await keys.list("bistro"):
        if key["name"] == "Sam":
            await keys.revoke(key["id"])
    assert (await waiters_of(tables, place))["5"] == "Sam"
    assert [s["waiter"] for s in await sections.sections(place.actor.restaurant_id)] == ["Alex", "Sam"]
    assert (await sections.set_section(place.actor, "Sam", [])).ok  # cleared: the name is gone
    assert [s["waiter"] for s in await sections.sections(place.actor.restaurant_id)] == ["Alex"]
    assert (await sections.set_section(place.actor, "Sam", ["Terrace"])).code == "waiter_not_found"


@pytest.mark.parametrize(("waiter", "areas", "tables_", "code"), [
    ("Nobody", ["Terrace"], [], "waiter_not_found"),
    ("Sam", ["Garden"], [], "area_not_found"),
    ("Sam", "Terrace", [], "invalid_area"),
    ("Sam", [], [999_999], "table_not_found"),
    ("Sam", [], ["1"], "invalid_action"),
])
async def test_a_section_names_waiters_areas_and_tables_that_exist(sections, terrace, waiter, areas, tables_, code):
    result = await sections.set_section(terrace.actor, waiter, areas, tables_)
    assert result.code == code


async def test_an_admin_key_is_no_waiter_to_give_a_section_to(sections, terrace, keys):
    await keys.add("bistro", "host stand", "admin", name="Host")
    assert (await sections.set_section(terrace.actor, "Host", ["Terrace"])).code == "waiter_not_found"


async def test_another_restaurants_tables_are_not_found(sections, terrace, cafe_place):
    result = await sections.set_section(terrace.actor, "Sam", [], [cafe_place.ids["1"]])
    assert result.code == "table_not_found"
    other = Actor(cafe_place.actor.restaurant_id, "cafe", "admin")
    assert (await sections.set_section(other, "Sam", [])).code == "waiter_not_found"
