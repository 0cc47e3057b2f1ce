"""The payload types of the browser client (`client/src/stores/types.ts`) against the one
schema per event type on the Python side (each app's `payloads.py`), and each schema
against what its builder makes: a field renamed, added or dropped on one side fails here.

Checked: the field names at every level the TypeScript spells out, and that a field the
client requires (no `?`) is one the server always sends (a required key of the schema).
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, get_args, get_origin, is_typeddict

import pytest

from notifications import payloads as notifications
from prices import payloads as prices
from wallets import payloads as wallets

ROOT = Path(__file__).resolve().parents[2]
TYPES_TS = ROOT / "client" / "src" / "stores" / "types.ts"

#: TypeScript interface -> its schema.
SCHEMAS: dict[str, Any] = {
    "PriceUpdate": prices.PriceUpdate,
    "PriceBatch": prices.PriceBatch,
    "MarketOverview": prices.MarketOverview,
    "Notification": notifications.NotificationPayload,
    "WalletUpdate": wallets.WalletUpdate,
    "TransactionData": wallets.TransactionData,
    "WalletSnapshot": wallets.WalletSnapshot,
    "SecurityWarning": wallets.SecurityWarning,
}
#: TypeScript union of events -> its schema per `event`.
EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "NotificationEvent": {
        get_args(typing.get_type_hints(event)["event"])[0]: event for event in get_args(notifications.NotificationEvent)
    },
}


# --- a reader for the subset of TypeScript types.ts uses ------------------------------


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside braces, brackets and parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "{[(<"
        depth -= char in "}])>"
        if char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


Fields = dict[str, tuple[bool, str]]  # name -> (optional, type text)


def _fields(body: str) -> Fields:
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    body = re.sub(r"//[^\n]*", "", body)
    fields: Fields = {}
    for member in _split_top(body.replace("\n", " "), ";"):
        member = member.strip()
        if not member or member.startswith("["):  # empty, or an index signature
            continue
        name, _, kind = member.partition(":")
        fields[name.strip().rstrip("?")] = (name.strip().endswith("?"), kind.strip())
    return fields


def interfaces() -> dict[str, Fields]:
    source = TYPES_TS.read_text()
    found = {}
    for match in re.finditer(r"export interface (\w+) \{", source):
        start = match.end()
        depth, end = 1, start
        while depth:
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            end += 1
        found[match.group(1)] = _fields(source[start : end - 1])
    return found


def unions() -> dict[str, dict[str, Fields]]:
    """`export type X = | { event: "a"; ... } | ...;` as {X: {"a": fields}}."""
    source = TYPES_TS.read_text()
    found = {}
    for match in re.finditer(r"export type (\w+) =((?:\s*\|\s*\{[^}]*\})+);", source):
        members = {}
        for body in re.findall(r"\{([^}]*)\}", match.group(2)):
            fields = _fields(body)
            members[fields["event"][1].strip('"')] = fields
        found[match.group(1)] = members
    return found


def _nested(hint: Any) -> Any:
    """The TypedDict inside a hint (`X`, `list[X]`, `X | None`), if any."""
    if is_typeddict(hint):
        return hint
    for arg in get_args(hint) if get_origin(hint) is not None else ():
        found = _nested(arg)
        if found is not None:
            return found
    return None


def required_keys(schema: Any) -> set[str]:
    """The keys a TypedDict always holds (`__required_keys__` cannot see `Required` or
    `NotRequired` in string annotations before Python 3.13, but does see the totality of
    each class a key was declared in)."""
    required = set()
    for name, hint in typing.get_type_hints(schema, include_extras=True).items():
        origin = get_origin(hint)
        if origin is typing.Required or (origin is not typing.NotRequired and name in schema.__required_keys__):
            required.add(name)
    return required


def compare(where: str, ts: Fields, schema: Any) -> list[str]:
    """What differs between a TypeScript object type and a TypedDict, at every level."""
    problems = []
    hints = typing.get_type_hints(schema)
    if set(ts) != set(hints):
        problems.append(
            f"{where}: only in TypeScript {sorted(set(ts) - set(hints))}, only in Python {sorted(set(hints) - set(ts))}"
        )
    for name, (optional, kind) in ts.items():
        if name not in hints:
            continue
        if not optional and name not in required_keys(schema):
            problems.append(f"{where}.{name}: required by the client, optional in the schema")
        inline = re.fullmatch(r"\{(.*)\}(\[\])?", kind, re.S)
        nested = _nested(hints[name])
        if inline is not None and nested is not None:
            problems += compare(f"{where}.{name}", _fields(inline.group(1)), nested)
        elif inline is not None:
            problems.append(f"{where}.{name}: an object in TypeScript, no schema in Python")
    return problems


# --- the tests --------------------------------------------------------------------------


def test_every_payload_type_of_the_client_is_checked() -> None:
    assert set(interfaces()) == set(SCHEMAS)
    assert set(unions()) == set(EVENT_SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_client_type_matches_the_schema(name: str) -> None:
    assert compare(name, interfaces()[name], SCHEMAS[name]) == []


@pytest.mark.parametrize("name", sorted(EVENT_SCHEMAS))
def test_each_event_of_the_client_union_matches_its_schema(name: str) -> None:
    ts = unions()[name]
    assert set(ts) == set(EVENT_SCHEMAS[name])
    for event, fields in ts.items():
        assert compare(f"{name}[{event}]", fields, EVENT_SCHEMAS[name][event]) == []


class _Mover(typing.TypedDict):
    symbol: str
    change24h: float


class _Schema(typing.TypedDict, total=False):
    symbol: typing.Required[str]
    cost: float
    top: list[_Mover]


class _Optional(typing.TypedDict, total=False):
    removed: bool


class _Inherited(_Optional):
    kept: int
    extra: typing.NotRequired[int]


def test_required_keys_sees_each_class_totality() -> None:
    assert required_keys(_Inherited) == {"kept"}


def test_the_comparison_sees_a_renamed_field() -> None:
    ts = _fields("symbol: string; price: number; top?: { symbol: string; change_24h: number }[];")
    assert required_keys(_Schema) == {"symbol"}
    assert compare("X", ts, _Schema) == [
        "X: only in TypeScript ['price'], only in Python ['cost']",
        "X.top: only in TypeScript ['change_24h'], only in Python ['change24h']",
    ]


# --- each schema against its builder (the notifications builders return plain dicts, so
# mypy does not hold them to the schema: this does) ------------------------------------


def test_notification_builders_make_their_schemas() -> None:
    from notifications.models import Announcement, Notification

    n = notifications.notification_payload(Notification(pk=1, title="t", body="b", data={}, priority="low"))
    a = notifications.announcement_payload(Announcement(pk=2, title="t", body="b", priority="low"))
    for payload in (n, a):
        assert set(payload) == required_keys(notifications.NotificationPayload)
    events = {
        "created": notifications.created_event(n),
        "read": notifications.read_event(["n:1"], 0),
        "read_all": notifications.read_all_event(),
        "dismissed": notifications.dismissed_event(["n:1"], 0),
        "snapshot": notifications.snapshot_event(0, [n]),
    }
    schemas = EVENT_SCHEMAS["NotificationEvent"]
    assert set(events) == set(schemas)
    for event, payload in events.items():
        assert required_keys(schemas[event]) <= set(payload) <= set(typing.get_type_hints(schemas[event])), event
    assert set(notifications.created_event(n, 3)) == set(typing.get_type_hints(schemas["created"]))
