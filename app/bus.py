"""The bus: carries "restaurant R changed, versions a..b" from where a change is published to the hubs.

`LocalPublisher` is the in-process bus: it delivers synchronously into this process's
hub, so updates keep the order the database gave them, and needs nothing installed. A
Redis pub/sub implementation will sit beside it for several worker processes (a later
issue), without touching the services, the handlers or the socket mechanics.
"""

from __future__ import annotations

from typing import Protocol

from .hub import Hub


class Publisher(Protocol):
    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        """Deliver (version, text) table updates, in version order, to every dashboard of the restaurant."""

    def announce(self, restaurant_id: int, text: str) -> None:
        """Deliver a message that is not a table update (not numbered, not replayed) to those dashboards."""


class LocalPublisher:
    """Delivers in this process, synchronously, so updates keep the order the database gave them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        for version, text in messages:
            self.hub.deliver(restaurant_id, version, text)

    def announce(self, restaurant_id: int, text: str) -> None:
        self.hub.announce(restaurant_id, text)
