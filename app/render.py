"""Table cards and the grid, rendered once per change, and the messages that carry them.

The page render and the socket pushes use the same templates (`_grid.html`,
`_table_card.html`): one place decides how a card looks. A change's message is
rendered and serialised here once, then handed to the publisher as text, so fanning
out to twenty dashboards costs twenty socket writes and nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby

import jinja2

from . import metrics
from .bus import Publisher
from .db import parse_time, utc_now
from .protocol import dumps
from .services.audit import TableUpdate
from .services.core import Result
from .services.restaurants import RestaurantView
from .services.table_view import Table

STATUS_WORDS = {"free": "Free", "occupied": "Occupied", "disabled": "Disabled"}
# a guest's call, on its card and in the list of calls (the page's script copies the card's words there)
REQUEST_WORDS = {"call_waiter": "☎ Waiter called", "ask_for_bill": "✎ Bill asked for"}


def minutes_since(moment: str) -> int:
    return max(0, int((datetime.now(UTC) - parse_time(moment)).total_seconds() // 60))


def initials(name: str) -> str:
    """How a card names its waiter: "SW" for Sam Wilson (first and last names), "Sa" for a name of one word."""
    words = name.split()
    if len(words) > 1:
        return (words[0][0] + words[-1][0]).upper()
    return name.strip()[:2]


def by_area(tables: Sequence[Table]) -> list[tuple[str, list[Table]]]:
    """Tables grouped by area, areas in the order their first table comes."""
    order: dict[str, int] = {}
    for table in tables:
        order.setdefault(table["area"], len(order))
    ordered = sorted(tables, key=lambda table: order[table["area"]])
    return [(area, list(group)) for area, group in groupby(ordered, key=lambda table: table["area"])]


def setup_filters(env: jinja2.Environment) -> None:
    env.filters["minutes_since"] = minutes_since
    env.filters["initials"] = initials
    env.globals["status_word"] = STATUS_WORDS.__getitem__
    env.globals["by_area"] = by_area
    env.globals["request_words"] = REQUEST_WORDS


class Renderer:
    def __init__(self, env: jinja2.Environment) -> None:
        self.card_template = env.get_template("_table_card.html")
        self.grid_template = env.get_template("_grid.html")

    def card(self, table: Table) -> str:
        return self.card_template.render(table=table)

    def grid(self, tables: Sequence[Table]) -> str:
        return self.grid_template.render(tables=tables)

    def update(self, update: TableUpdate) -> str:
        """A changed table's message: its card, or that it left the floor."""
        table = update.table
        if "removed" in table:
            return dumps({"type": "table_removed", "version": update.version, "table_id": table["id"]})
        return dumps({"type": "table_update", "version": update.version, "table": table, "html": self.card(table)})

    def snapshot(self, version: int, tables: Sequence[Table], restaurant: RestaurantView) -> str:
        """The whole grid, the restaurant's name and idle windows, and the server's time (the page counts
        idle minutes and Restore's end by this clock)."""
        return dumps({"type": "tables_snapshot", "version": version, "now": utc_now(), "restaurant": restaurant,
                      "tables": tables, "html": self.grid(tables)})


class Broadcast:
    """Turns a service's updates into messages, once, and publishes them to the restaurant's dashboards."""

    def __init__(self, renderer: Renderer, publisher: Publisher) -> None:
        self.renderer = renderer
        self.publisher = publisher

    def updates(self, restaurant_id: int, updates: Sequence[TableUpdate]) -> None:
        if updates:
            self.publisher.publish(restaurant_id, [(u.version, self.renderer.update(u)) for u in updates])

    def result(self, restaurant_id: int, result: Result) -> None:
        """An operation's table updates, then its announcements (a guest's call), to every dashboard."""
        if result.updates:  # from the commit (the result in hand) to the last write to this process's dashboards
            with metrics.ACTION_FANOUT_SECONDS.time():
                self.updates(restaurant_id, result.updates)
        for announcement in result.announcements:
            self.publisher.announce(restaurant_id, dumps(announcement), result.version)

    def restaurant(self, restaurant_id: int, view: RestaurantView) -> None:
        """A new name or idle windows, to this worker's dashboards of the restaurant (not numbered: no table
        changed). Each worker's watcher reads the change from the log itself: the bus need not carry it."""
        self.publisher.announce(restaurant_id, dumps({"type": "restaurant_update", "restaurant": view}),
                                here_only=True)
