"""The command line: `serve` (the default) and the administration subcommands.

Every subcommand goes through the same services as the web application. A bad
argument or a refused request exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web

from . import add_services, create_app, metrics, protocol, workers
from .auth import ROLES, KeyService
from .db import Database, configure
from .services.bulk import BULK_AT_MOST
from .services.core import Actor, Result, ServiceError
from .services.floor import DEFAULT_AREA, FloorService
from .services.reports import CallRow, Report, ReportService, TurnRow
from .services.restaurants import DEMO_SLUG, OVERRIDES, RestaurantService
from .services.sections import Section, SectionService
from .services.table_view import Table, TableRef
from .services.tables import TableService
from .settings import EVERY_ADDRESS, SettingError, Settings, declared
from .web.access import Refused
from .web.actions import ACTIONS, perform_bulk
from .web.security import AccessLogger


class CliError(Exception):
    """A reason to stop, said in one line."""


class UsageError(CliError):
    """Input the command cannot use as given: it exits 2, as a bad argument does."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="run.py", description="Maître: a live table dashboard for small restaurants.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    serve = commands.add_parser("serve", help="start the server (the default command)")
    for spec in declared():
        serve.add_argument(spec.flag, dest=spec.name, metavar=spec.name.upper(), help=f"{spec.help} [{spec.env}]")
    serve.add_argument("--no-demo", action="store_true", help="do not create the demo restaurant on an empty database")
    serve.set_defaults(run=serve_command)

    restaurant = commands.add_parser("restaurant", help="add and list restaurants").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser)
    add = with_db(restaurant.add_parser("add", help="add a restaurant"))
    add.add_argument("slug", help="short name used in addresses: lowercase letters, digits, hyphens")
    add.add_argument("--name", required=True, help="the restaurant's name as guests see it")
    add.add_argument("--tables", type=int, default=0, help="how many tables to create, labelled 1..N (default 0)")
    add.set_defaults(run=restaurant_add)
    configure = with_db(restaurant.add_parser("set", help="rename a restaurant or set its own time windows"))
    configure.add_argument("slug")
    configure.add_argument("--name", help="a new name")
    for name in OVERRIDES:
        configure.add_argument("--" + name.replace("_", "-"), dest=name, type=minutes_or_default, metavar="N|default",
                               help="minutes, or 'default' for the server's setting")
    configure.add_argument("--time-zone", metavar="ZONE|default",
                           help="its time zone, in which reports count days (e.g. Europe/Paris), or 'default' for "
                           "the server's setting")
    configure.set_defaults(run=restaurant_set)
    listing = with_json(with_db(restaurant.add_parser("list", help="list restaurants")))
    listing.set_defaults(run=restaurant_list)

    table = commands.add_parser("table", help="add, change, remove and list tables").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser)
    add = with_db(table.add_parser("add", help="add a table to a restaurant"))
    add.add_argument("slug")
    add.add_argument("label", help='the table\'s label, e.g. "5", "T12", "Terrace 3"')
    add.add_argument("--seats", type=int, default=4, help="number of seats (default 4)")
    add.add_argument("--area", default=DEFAULT_AREA, help=f'area of the restaurant (default "{DEFAULT_AREA}")')
    add.set_defaults(run=table_add)
    listing = with_json(with_db(table.add_parser("list", help="list a restaurant's tables with their guest pages")))
    listing.add_argument("slug")
    listing.set_defaults(run=table_list)
    rotate = with_db(table.add_parser("rotate-qr", help="give a table a new QR code; printed old ones stop working"))
    rotate.add_argument("slug")
    rotate.add_argument("label")
    rotate.set_defaults(run=table_rotate_qr)
    change = with_db(table.add_parser("set", help="rename a table, or change its seats, area or place in the grid"))
    change.add_argument("slug")
    change.add_argument("label", help="the table's label now")
    change.add_argument("--label", dest="new_label", metavar="LABEL", help="its new label")
    change.add_argument("--seats", type=int, help="its number of seats")
    change.add_argument("--area", help="the area it is in")
    change.add_argument("--position", type=int, metavar="N", help="its place in the grid's order (1 = first)")
    change.set_defaults(run=table_set)
    remove = with_db(table.add_parser("remove", help="take a free table off the floor; its QR code stops working"))
    remove.add_argument("slug")
    remove.add_argument("label")
    remove.set_defaults(run=table_remove)
    close_all = with_db(table.add_parser("close-all", help="end of service: close every occupied table in one change"))
    close_all.add_argument("slug")
    close_all.add_argument("--area", help="only the parties seated in this area")
    close_all.set_defaults(run=table_close_all)

    key = commands.add_parser("key", help="make, list and revoke API keys").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser)
    add = with_db(key.add_parser("add", help="make a key; it is printed alone on the last line"))
    add.add_argument("slug")
    add.add_argument("--role", choices=ROLES, default="admin",
                     help="admin may do everything; waiter serves tables and calls; viewer only watches (default "
                     "admin)")
    add.add_argument("--name", help="the person or screen it stands for, shown to the staff (a waiter's name: "
                     "sections are given by it); default: the label's first 40 characters")
    add.add_argument("--label", help="who or what uses the key, e.g. \"Sam's phone\" (default: the name, else the "
                     "role)")
    add.set_defaults(run=key_add)
    listing = with_json(with_db(key.add_parser("list", help="list a restaurant's keys (never the keys themselves)")))
    listing.add_argument("slug")
    listing.set_defaults(run=key_list)
    revoke = with_db(key.add_parser("revoke", help="revoke a key"))
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=key_revoke)

    section = commands.add_parser("section", help="give waiters their sections: areas, single tables").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser)
    given = with_db(section.add_parser("set", help="a waiter's section becomes exactly these areas and tables "
                                       "(neither: the waiter has none)"))
    given.add_argument("slug")
    given.add_argument("waiter", metavar="WAITER_NAME", help="the name of a waiter key (key add --role waiter)")
    given.add_argument("--area", dest="areas", action="append", default=[], metavar="AREA",
                       help="a whole area; repeat for more")
    given.add_argument("--table", dest="labels", action="append", default=[], metavar="LABEL",
                       help="a single table, by its label; repeat for more")
    given.set_defaults(run=section_set)
    listing = with_json(with_db(section.add_parser("list", help="each waiter's section, and the tables in nobody's")))
    listing.add_argument("slug")
    listing.set_defaults(run=section_list)

    bulk = with_db(commands.add_parser("bulk", help="run a list of table actions in one change, as the socket's bulk"))
    bulk.add_argument("slug")
    bulk.add_argument("file", metavar="FILE.json", help='a JSON array of actions, as the socket\'s "actions" '
                      '(e.g. [{"action": "close_table", "table_id": 4}]); - reads it from stdin')
    bulk.add_argument("--not-atomic", dest="atomic", action="store_false",
                      help="let each action stand alone: the others are done when one fails (default: all or nothing)")
    bulk.set_defaults(run=bulk_command)
    report = with_json(with_db(commands.add_parser(
        "report", help="what happened on the floor: covers, turn times, occupancy, calls (default: the last service)")))
    report.add_argument("slug")
    report.add_argument("--day", metavar="YYYY-MM-DD", help="one service day")
    report.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="the first service day of a range")
    report.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="its last day (at most 90 days in all)")
    report.set_defaults(run=report_command)
    backup = with_db(commands.add_parser("backup", help="copy the database, consistently, while the server runs"))
    backup.add_argument("path", help="the copy to write (must not exist yet)")
    backup.set_defaults(run=backup_command)
    return parser


def minutes_or_default(text: str) -> int | str:
    if text == "default":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes or 'default'") from None


def with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--db", dest="db_path", metavar="PATH", help="database file [MAITRE_DB_PATH]")
    return parser


def with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return 2
    except (CliError, ServiceError, SettingError, workers.WorkersFailed) as error:
        print(f"run.py: error: {describe(error)}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return 1


def describe(error: Exception) -> str:
    return error.detail if isinstance(error, ServiceError) else str(error)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {}
    for spec in declared():
        text = getattr(args, spec.name, None)
        if text is not None:
            overrides[spec.name] = spec.parse_text(text, source=spec.flag)
    return Settings.from_env(**overrides)


Work = Callable[[Database, Settings, argparse.Namespace], Awaitable[int]]


def with_database(work: Work) -> Callable[[argparse.Namespace], int]:
    """Run `work` against the database named by --db or the environment, then close it."""

    def command(args: argparse.Namespace) -> int:
        settings = Settings.from_env(db_path=args.db_path)

        async def run() -> int:
            db = await open_database(settings.db_path)
            try:
                return await work(db, settings, args)
            finally:
                await db.close()

        return asyncio.run(run())

    return command


async def open_database(path: str) -> Database:
    try:
        return await Database.open(path)
    except sqlite3.Error as error:
        raise CliError(f"cannot open the database {path}: {error}") from None


def print_rows(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    cells = [[str(row[column] if row[column] is not None else "-") for column in columns] for row in rows]
    widths = [max(len(text) for text in column) for column in zip(columns, *cells)]
    for line in [list(columns), *cells]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


@with_database
async def restaurant_add(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).add(args.slug, args.name, args.tables)
    print(f"Restaurant {restaurant['slug']!r} ({restaurant['name']}) added with {args.tables} tables.")
    print(f"Make a key for it: python run.py key add {restaurant['slug']}")
    return 0


@with_database
async def restaurant_list(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    print_rows(await RestaurantService(db, settings).all(), ("id", "slug", "name", "tables", "version"), args.json)
    return 0


@with_database
async def restaurant_set(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    settable = ("name", *OVERRIDES, "time_zone")
    changes = {name: getattr(args, name) for name in settable if getattr(args, name) is not None}
    if not changes:
        raise CliError("nothing to set: give --name, --time-zone or one of the --...-minutes options")
    changes = {name: None if value == "default" else value for name, value in changes.items()}
    restaurant = await RestaurantService(db, settings).configure(args.slug, **changes)
    windows = ", ".join(f"{name} {restaurant[name] or 'default'}" for name in (*OVERRIDES, "time_zone"))
    print(f"Restaurant {restaurant['slug']!r} ({restaurant['name']}): {windows}.")
    return 0


@with_database
async def table_add(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    result = await FloorService(db, settings).add_table(cli_actor(restaurant), args.label, args.seats, args.area)
    table = the_table(result)
    print(f"Table {table['number']} ({table['seats']} seats, {table['area']}) added to {args.slug}, id {table['id']}.")
    return 0


@with_database
async def table_set(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant, table_id = await table_by_label(db, settings, args.slug, args.label)
    result = await FloorService(db, settings).set_table(
        cli_actor(restaurant), table_id, args.new_label, args.seats, args.area, args.position)
    table = the_table(result)
    print(f"Table {table['number']} of {args.slug}: {table['seats']} seats, {table['area']}, "
          f"position {table['position']}.")
    return 0


@with_database
async def table_remove(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant, table_id = await table_by_label(db, settings, args.slug, args.label)
    the_table(await FloorService(db, settings).remove_table(cli_actor(restaurant), table_id))
    print(f"Table {args.label} removed from {args.slug}; its QR code no longer works. Its history is kept.")
    return 0


def cli_actor(restaurant: dict[str, Any]) -> Actor:
    return Actor(restaurant["id"], "cli", "admin")


async def table_by_label(db: Database, settings: Settings, slug: str, label: str) -> tuple[dict[str, Any], int]:
    """The restaurant and the id of its table with this label, or a CliError."""
    restaurant, (table_id,) = await tables_by_label(db, settings, slug, [label])
    return restaurant, table_id


async def tables_by_label(db: Database, settings: Settings, slug: str,
                          labels: Sequence[str]) -> tuple[dict[str, Any], list[int]]:
    """The restaurant and the ids of its tables with these labels, in order, or a CliError naming those it lacks."""
    restaurant = await RestaurantService(db, settings).by_slug(slug)
    _, tables = await TableService(db, settings).list_tables(restaurant["id"])
    ids = {table["number"]: table["id"] for table in tables}
    missing = [label for label in labels if label not in ids]
    if missing:
        raise CliError(f"{slug} has no {counted('table', [repr(label) for label in missing])}")
    return restaurant, [ids[label] for label in labels]


def the_table(result: Result) -> dict[str, Any]:
    """The one table an operation changed first, or its refusal as a CliError."""
    if not result.ok:
        raise CliError(result.detail)
    return dict(result.tables[0])


@with_database
async def table_close_all(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    _, tables = await TableService(db, settings).list_tables(restaurant["id"])
    areas = list(dict.fromkeys(table["area"] for table in tables))
    if args.area is not None and args.area not in areas:
        raise CliError(f"{args.slug} has no area {args.area!r}; its areas are {', '.join(areas) or 'none yet'}")
    parties = seated_parties(tables, args.area)
    if not parties:
        print("Nothing to close." if args.area is None else f"Nothing to close in {args.area}.")
        return 0
    if len(parties) > BULK_AT_MOST:
        raise CliError(f"{len(parties)} parties are seated, more than one change may close ({BULK_AT_MOST}); "
                       "close them area by area with --area")
    result = await perform_bulk(services(db, settings), cli_actor(restaurant),
                                {"actions": [{"action": "close_table", "table_id": own} for own in parties]})
    if not result.ok:
        raise CliError(result.detail)
    closed = [table["number"] for table in result.tables]
    print(f"Closed {len(closed)} {'table' if len(closed) == 1 else 'tables'}: {', '.join(closed)}.")
    return 0


def seated_parties(tables: list[Table], area: str | None) -> list[int]:
    """The own table of each party seated in the area (anywhere when None), in the grid's order: a party at
    joined tables is named once, by its own table (the first of its tables)."""
    return list(dict.fromkeys(table["session"]["tables"][0]["id"] for table in tables
                              if table["session"] is not None and area in (None, table["area"])))


def services(db: Database, settings: Settings) -> web.Application:
    """The services a bulk's items call, under the keys `perform_bulk` looks them up by, as in the server's app."""
    app = web.Application()
    add_services(app, db, settings)
    return app


@with_database
async def bulk_command(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    actions = read_actions(args.file)
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    try:
        result = await perform_bulk(services(db, settings), cli_actor(restaurant),
                                    {"atomic": args.atomic, "actions": actions})
    except Refused as malformed:
        raise UsageError(f"{source_name(args.file)}: {malformed.detail}") from None
    if not result.ok:
        raise CliError(result.detail)
    for number, (item, outcome) in enumerate(zip(actions, result.outcomes, strict=True), start=1):
        said = "ok" if outcome["ok"] else f"{outcome['code']}: {outcome['detail']}"
        print(f"{number}. {item_name(item)}: {said}")
    failed = sum(not outcome["ok"] for outcome in result.outcomes)
    if failed:
        others = "; the others were done" if failed < len(actions) else ""
        print(f"run.py: error: {failed} of {len(actions)} actions failed{others}.", file=sys.stderr)
        return 1
    return 0


JSON_KINDS = {dict: "an object", str: "a string", bool: "true or false", type(None): "null"}


def read_actions(path: str) -> list[Any]:
    """The JSON array in the file (stdin for "-"), or a UsageError saying what is wrong with it."""
    name = source_name(path)
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {name}: {error}") from None
    try:
        actions = protocol.loads(text)  # as the socket reads a message: 4.0 is the whole number 4
    except (ValueError, RecursionError) as error:
        raise UsageError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(actions, list):
        held = JSON_KINDS.get(type(actions), "a number")
        raise UsageError(f'{name} holds {held}, not an array of actions like [{{"action": "close_table", '
                         '"table_id": 4}]')
    return actions


def source_name(path: str) -> str:
    return "stdin" if path == "-" else path


def item_name(item: dict[str, Any]) -> str:
    """An item as the file said it: its action and ids, e.g. "move_table from table 4 to table 9"."""
    ids = ACTIONS[item["action"]].ids
    return " ".join([item["action"], *(f"{name.removesuffix('_id').replace('_', ' ')} {item[name]}" for name in ids)])


@with_database
async def table_list(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    _, tables = await TableService(db, settings).list_tables(restaurant["id"])
    tokens = await FloorService(db, settings).qr_tokens(restaurant["id"])
    urls = guest_urls(settings, tokens)
    rows = [{**table, "label": table["number"], "qr_token": tokens[table["id"]], "guest_url": urls[table["id"]]}
            for table in tables if table["id"] in tokens]  # not one removed between the two reads
    print_rows(rows, ("id", "label", "area", "seats", "status", "guest_url"), as_json=args.json)
    return 0


@with_database
async def table_rotate_qr(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant, table_id = await table_by_label(db, settings, args.slug, args.label)
    service = FloorService(db, settings)
    the_table(await service.rotate_qr(cli_actor(restaurant), table_id))
    token = (await service.qr_tokens(restaurant["id"]))[table_id]
    print(f"Table {args.label} of {args.slug} has a new QR code; print it again from /admin/tables/qr.")
    url = guest_urls(settings, {table_id: token})[table_id]
    if url is not None:
        print(url)
    return 0


def guest_urls(settings: Settings, tokens: dict[int, str]) -> dict[int, str | None]:
    """Each table's guest page, as the server's settings make it; None for all, said why on stderr, when a
    server listening on every address has no public URL (only the QR sheet, from a request, knows it then)."""
    try:
        base = settings.guest_base()
    except SettingError as unknown:
        print(f"run.py: note: {unknown}. The dashboard's QR codes page uses the address the tablet reached "
              "the server at.", file=sys.stderr)
        return dict.fromkeys(tokens)
    return {table_id: f"{base}/t/{token}" for table_id, token in tokens.items()}


@with_database
async def key_add(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    named = args.name is not None and args.name.strip() != ""
    label = args.label if args.label is not None else args.name if named else args.role
    record, key = await KeyService(db).add(args.slug, label, args.role, name=args.name)
    print(f"Key {record['id']} ({record['role']} {record['name']!r}, label {record['label']!r}) for "
          f"{record['restaurant']}. Keep it now, it is not shown again:")
    print(key)
    return 0


@with_database
async def key_list(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    keys = await KeyService(db).list(args.slug)
    print_rows(keys, ("id", "name", "role", "label", "created_at", "revoked_at"), args.json)
    return 0


@with_database
async def section_set(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant, table_ids = await tables_by_label(db, settings, args.slug, args.labels)
    service = SectionService(db, settings)
    result = await service.set_section(cli_actor(restaurant), args.waiter, args.areas, table_ids)
    if not result.ok:
        raise CliError(result.detail)
    _, tables = await TableService(db, settings).list_tables(restaurant["id"])
    name = args.waiter.strip()
    section = next((s for s in await service.sections(restaurant["id"]) if s["waiter"] == name),
                   Section(waiter=name, areas=[], tables=[]))  # its key revoked since: no section left to list
    print(section_line(section, tables))
    return 0


@with_database
async def section_list(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    sections = await SectionService(db, settings).sections(restaurant["id"])
    _, tables = await TableService(db, settings).list_tables(restaurant["id"])
    unassigned = [TableRef(id=table["id"], number=table["number"]) for table in tables if table["waiter"] is None]
    if args.json:
        print(json.dumps({"sections": sections, "unassigned": unassigned}, indent=2))
        return 0
    if not sections:
        print(f"{args.slug} has no waiters yet. Make a key for each: "
              f"python run.py key add {args.slug} --role waiter --name NAME")
    for section in sections:
        print(section_line(section, tables))
    if unassigned:
        print(f"In nobody's section: {counted('table', [table['number'] for table in unassigned])}")
    else:
        print("Every table is in a section.")
    return 0


def section_line(section: Section, tables: list[Table]) -> str:
    """A waiter's section as a host reads it, with the tables it comes to (an area's, less those given
    to others by themselves): "Sam: area Terrace, table 1 (serves tables 1, 5 and 6)"."""
    given = [counted("area", section["areas"]), counted("table", [t["number"] for t in section["tables"]])]
    serves = [table["number"] for table in tables if table["waiter"] == section["waiter"]]
    if not any(given):
        return f"{section['waiter']}: no section"
    return (f"{section['waiter']}: {', '.join(part for part in given if part)} "
            f"(serves {counted('table', serves) or 'no table'})")


def counted(word: str, names: Sequence[str]) -> str:
    """The names after their word, for a person: table 1; tables 1, 5 and 6; nothing for none."""
    if len(names) <= 1:
        return f"{word} {names[0]}" if names else ""
    return f"{word}s {', '.join(names[:-1])} and {names[-1]}"


@with_database
async def key_revoke(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    record = await KeyService(db).revoke(args.key_id)
    print(f"Key {record['id']} ({record['label']!r}, {record['restaurant']}) revoked.")
    return 0


@with_database
async def report_command(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    restaurant = await RestaurantService(db, settings).by_slug(args.slug)
    reports = ReportService(db, settings)
    try:
        period = await reports.period(restaurant["id"], args.day, args.first, args.last)
    except ServiceError as invalid:  # invalid_period: dates the command cannot use, as a bad argument
        raise UsageError(invalid.detail) from None
    report = await reports.report(cli_actor(restaurant), period)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(report_summary(report)))
    return 0


BAR_AT_MOST = 40  # characters of the busiest hour's bar


def report_summary(report: Report) -> list[str]:
    """The report as a manager reads it in a terminal: the period, then each figure under its heading."""
    period, totals = report["period"], report["totals"]
    lines = [f"{report['restaurant']['name']}: {period['label']}",
             f"Service days start at {period['day_starts_at']}, {period['time_zone']} time "
             f"({period['days']} {'day' if period['days'] == 1 else 'days'}).", ""]
    sizes = totals["unknown_size"]
    unknown = f" ({sizes} {'party' if sizes == 1 else 'parties'} of unknown size)" if sizes else ""
    lines += [f"Parties {totals['parties']:,}, covers {totals['covers']:,}{unknown}; tables used "
              f"{totals['tables_used']} of {totals['tables']}; guests' calls {totals['calls']:,}; restores "
              f"{totals['restores']:,}.", ""]
    averaged = ", on average over the days" if period["days"] > 1 else ""
    for heading, body in (("Covers and parties per hour", hour_lines(report)),
                          (f"Busiest moment per area (tables occupied{averaged})", occupancy_lines(report)),
                          ("Turn times, seated to closed", turn_lines(report)),
                          ("Guests' calls: time to claim and to resolve (minutes:seconds)", call_lines(report)),
                          ("Restores per day", restore_lines(report))):
        lines += [heading, *body, ""]
    unused = ", ".join(f"{table['number']} ({table['area']})" for table in report["unused_tables"])
    lines.append(f"Tables never used: {unused or 'none'}.")
    return lines


def hour_lines(report: Report) -> list[str]:
    """From the first hour anyone sat down in to the last (the report's hours), each with its bar of covers."""
    hours = report["hours"]
    if not hours:
        return ["  Nobody was seated."]
    most = max(hour["covers"] for hour in hours) or 1
    return columns([{"hour": hour["hour"], "covers": hour["covers"], "parties": hour["parties"],
                     "": "#" * math.ceil(hour["covers"] * BAR_AT_MOST / most)} for hour in hours])


def occupancy_lines(report: Report) -> list[str]:
    occupancy = report["occupancy"]
    rows = []
    for area in occupancy["areas"]:
        busiest, at = max(((slot["areas"].get(area, 0.0), slot["at"]) for slot in occupancy["slots"]),
                          key=lambda peak: peak[0], default=(0.0, "-"))
        rows.append({"area": area, "tables": occupancy["tables"][area], "at most": f"{busiest:.1f}",
                     "at": at if busiest else "-"})
    return columns(rows) if rows else ["  No tables."]


def turn_lines(report: Report) -> list[str]:
    turns = report["turns"]
    return columns([turn_row(turns["all"], "All parties"), *map(turn_row, turns["by_area"]),
                    *map(turn_row, turns["by_size"])])


def turn_row(row: TurnRow, name: str | None = None) -> dict[str, Any]:
    return {"": name or row["key"], "parties": row["parties"], "median": minutes(row["median_minutes"]),
            "p90": minutes(row["p90_minutes"])}


def call_lines(report: Report) -> list[str]:
    calls = report["calls"]
    if not any(row["calls"] for row in calls["by_kind"]):
        return ["  No calls."]
    return columns([*map(call_row, calls["by_kind"]), *(call_row(row, "by ") for row in calls["by_waiter"])])


def call_row(row: CallRow, prefix: str = "") -> dict[str, Any]:
    return {"": prefix + row["key"], "calls": row["calls"], "claimed": row["claimed"],
            "to claim": f"{clock(row['claim_median_seconds'])} / {clock(row['claim_p90_seconds'])}",
            "resolved": row["resolved"],
            "to resolve": f"{clock(row['resolve_median_seconds'])} / {clock(row['resolve_p90_seconds'])}"}


def restore_lines(report: Report) -> list[str]:
    days = [day for day in report["restores"] if day["restores"]]
    return columns([{"day": day["day"], "restores": day["restores"]} for day in days]) if days else ["  None."]


def minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} min"


def clock(seconds: float | None) -> str:
    """Seconds as minutes:seconds, 95.4 -> "1:35"; "-" for none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Rows under their keys as headings, in aligned columns, indented under a section's heading: the first
    column and any without a heading (names, bars) to the left, figures to the right."""
    keys = list(rows[0])
    cells = [[f"{row[key]:,}" if isinstance(row[key], int) else str(row[key]) for key in keys] for row in rows]
    widths = [max(len(text) for text in column) for column in zip(keys, *cells)]
    right = [n > 0 and key != "" for n, key in enumerate(keys)]
    return ["  " + "  ".join(text.rjust(width) if figure else text.ljust(width)
                             for text, width, figure in zip(line, widths, right)).rstrip()
            for line in [keys, *cells]]


def backup_command(args: argparse.Namespace) -> int:
    """SQLite's online backup, in one step: a consistent snapshot even under write load, then checked."""
    settings = Settings.from_env(db_path=args.db_path)
    target = Path(args.path)
    if target.exists():
        raise CliError(f"{target} exists already; choose a new name")
    if not Path(settings.db_path).exists():
        raise CliError(f"there is no database at {settings.db_path}")
    source = configure(sqlite3.connect(settings.db_path))
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
            (version,) = copy.execute("PRAGMA user_version").fetchone()
        finally:
            copy.close()
    finally:
        source.close()
    if verdict != "ok":
        raise CliError(f"the copy failed its integrity check: {verdict}")
    print(f"Backed up {settings.db_path} to {target} (schema version {version}, integrity check ok).")
    print(f"To restore: stop the server, then put {target} in place of {settings.db_path} "
          f"(and remove {settings.db_path}-wal and -shm beside it).")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    workers.configure_logging(settings.log_level)
    if not settings.metrics:
        metrics.switch_off()
    for line in asyncio.run(first_start(settings, demo=not args.no_demo)):
        print(line, flush=True)
    if settings.workers > 1:
        return workers.serve(settings)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log_class=AccessLogger)
    return 0


async def first_start(settings: Settings, demo: bool) -> list[str]:
    """On an empty database, the demo restaurant and its key; otherwise, how to get a key."""
    db = await open_database(settings.db_path)
    try:
        restaurants = RestaurantService(db, settings)
        address = f"http://{public_host(settings.host)}:{settings.port}/admin/login"
        if await restaurants.all():
            return [f"Database {settings.db_path}. To make a sign-in key: "
                    f"python run.py key add SLUG --db {settings.db_path}"]
        if not demo:
            return [f"Database {settings.db_path} has no restaurant yet. Add one: "
                    f"python run.py restaurant add SLUG --name NAME --tables 10 --db {settings.db_path}"]
        await restaurants.add_demo()
        _, key = await KeyService(db).add(DEMO_SLUG, "demo admin", "admin", actor="demo")
        return [
            f"Created the demo restaurant {DEMO_SLUG!r} with 12 tables in {settings.db_path}.",
            f"Sign in at {address} with this admin key.",
            f"Admin key for {DEMO_SLUG!r} (shown once, keep it): {key}",
        ]
    finally:
        await db.close()


def public_host(host: str) -> str:
    return "127.0.0.1" if host in EVERY_ADDRESS else host
