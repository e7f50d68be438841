"""The pure parts of app/render.py; the fragments themselves are checked where they are served."""

from __future__ import annotations

from app.render import by_area, initials


def table(number: str, area: str) -> dict[str, str]:
    return {"number": number, "area": area}


def test_tables_are_grouped_by_area_in_the_order_each_area_first_comes():
    tables = [table("1", "Main room"), table("T1", "Terrace"), table("2", "Main room"), table("B1", "Bar"),
              table("T2", "Terrace")]
    assert by_area(tables) == [
        ("Main room", [table("1", "Main room"), table("2", "Main room")]),
        ("Terrace", [table("T1", "Terrace"), table("T2", "Terrace")]),
        ("Bar", [table("B1", "Bar")]),
    ]


def test_within_an_area_the_tables_keep_their_order():
    tables = [table("9", "Main room"), table("3", "Main room"), table("5", "Main room")]
    assert by_area(tables) == [("Main room", tables)]


def test_no_tables_no_areas():
    assert by_area([]) == []


def test_a_waiter_is_named_on_a_card_by_initials():
    assert initials("Sam Wilson") == "SW"
    assert initials("mary jane watson") == "MW"  # the first and the last
    assert initials("Alex") == "Al"  # one word: its first two letters
    assert initials("É") == "É"
