"""Reading the server's HTML with a real parser rather than string slicing."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, Any]] = []
        self.stack: list[str] = []
        self.in_card = 0
        self.in_button = False
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "article" and "card" in (attributes.get("class") or "").split():
            self.cards.append({**attributes, "buttons": [], "text": ""})
            self.in_card = 1
        elif self.in_card and tag == "article":
            self.in_card += 1
        if self.in_card and tag == "button":
            self.in_button = True
            self.cards[-1]["buttons"].append("")

    def handle_endtag(self, tag: str) -> None:
        if self.in_card and tag == "article":
            self.in_card -= 1
        if tag == "button":
            self.in_button = False

    def handle_data(self, data: str) -> None:
        if self.in_card:
            self.cards[-1]["text"] += data
            if self.in_button:
                self.cards[-1]["buttons"][-1] += data.strip()


def cards(html: str) -> list[dict[str, Any]]:
    """Every table card in `html`: its attributes, its button labels and its text."""
    parser = _Cards()
    parser.feed(html)
    parser.close()
    for card in parser.cards:
        card["text"] = " ".join(card["text"].split())
    return parser.cards


class _Forms(HTMLParser):
    """Each form's action with the names and values of its inputs and its button's label."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.in_form = False
        self.in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.in_form = True
            self.forms.append({"action": attributes.get("action"), "method": attributes.get("method"),
                               "fields": {}, "button": ""})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][attributes.get("name")] = attributes.get("value")
        elif tag == "button":
            self.in_button = self.in_form  # a button outside any form (Remove's, Cancel) posts nothing

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self.in_button = False
        elif tag == "form":
            self.in_form = False

    def handle_data(self, data: str) -> None:
        if self.in_button and self.forms:
            self.forms[-1]["button"] += data.strip()


def forms(html: str) -> list[dict]:
    """Every form in `html`: its action and method, its inputs' names and values, its button's label."""
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms
