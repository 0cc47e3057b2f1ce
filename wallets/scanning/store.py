"""Bulk writes of a scan batch: prebuilt rows, one `executemany` per table, no model instances.

A batch writes thousands of activity rows. Building a model instance per row and
preparing every field through the ORM cost more than the insert itself (profiled in
docs/benchmarks/wallets.md), so rows stay tuples written by the project's
`realtime_project.bulk.insert_rows` (one statement per table, the SQL `bulk_create` would
write); values that need the database's adaptation (times, decimals) go through their
model field once per distinct value, and payloads are encoded once with orjson (the
encoder the gateway publishes them with).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from django.db import connections, router
from django.db.models import Field, Model
from django.db.models.constants import OnConflict
from django.utils import timezone

from realtime_project.bulk import insert_rows

from ..addresses import checksum_lower
from ..chaindata import Block
from ..models import Balance, Chain, ScannedBlock, WalletActivity
from .batch import ActivityRow, BalanceChange


def insert_activity(*, chain: Chain, rows: Sequence[ActivityRow]) -> None:
    """Insert activity rows; a row whose natural key is stored already is left as it is."""
    if not rows:
        return
    times = _Adapter(WalletActivity, "timestamp", _utc)
    created = _Adapter(WalletActivity, "created_at")(timezone.now())
    dumps = orjson.dumps
    insert_rows(
        WalletActivity,
        (
            "chain",
            "address",
            "kind",
            "block_hash",
            "tx_hash",
            "log_index",
            "token",
            "block_number",
            "timestamp",
            "payload",
            "created_at",
        ),
        [
            (
                chain.pk,
                r.address,
                r.kind,
                r.block_hash,
                r.tx_hash,
                r.log_index,
                r.token,
                r.block_number,
                times(r.timestamp),
                dumps(r.payload).decode(),
                created,
            )
            for r in rows
        ],
        on_conflict=OnConflict.IGNORE,
    )


def upsert_scanned_blocks(*, chain: Chain, blocks: Iterable[Block]) -> None:
    """Record blocks as canonical (number -> hash); rows above the cursor exist only after a rewind."""
    insert_rows(
        ScannedBlock,
        ("chain", "number", "hash", "parent_hash", "timestamp"),
        [(chain.pk, b.number, b.hash, b.parent_hash, b.timestamp) for b in blocks],
        on_conflict=OnConflict.UPDATE,
        unique_fields=("chain", "number"),
        update_fields=("hash", "parent_hash", "timestamp"),
    )


def upsert_balances(*, chain: Chain, changes: Iterable[BalanceChange]) -> None:
    """Store the new balances of a batch in one statement (one upsert, not one per pair)."""
    amount = _Adapter(Balance, "amount", Decimal)
    now = _Adapter(Balance, "updated_at")(timezone.now())
    insert_rows(
        Balance,
        ("chain", "address", "token", "amount", "block_number", "symbol", "decimals", "updated_at"),
        [
            (
                chain.pk,
                checksum_lower(c.address),
                checksum_lower(c.token) if c.token else "",
                amount(c.current),
                c.block,
                c.symbol[:32],
                c.decimals,
                now,
            )
            for c in changes
        ],
        on_conflict=OnConflict.UPDATE,
        unique_fields=("chain", "address", "token"),
        update_fields=("amount", "block_number", "symbol", "decimals", "updated_at"),
    )


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class _Adapter:
    """A model field's value as its database takes it (`get_db_prep_save`), memoised.

    Block times repeat for every row of a block: adapting each distinct value once keeps
    the ORM's exact storage format without paying for it per row. `convert` turns the
    raw value (seconds, an int amount) into the field's Python type first.
    """

    def __init__(self, model: type[Model], name: str, convert: Callable[[Any], Any] | None = None) -> None:
        self._field = cast("Field[Any, Any]", model._meta.get_field(name))
        self._connection = connections[router.db_for_write(model)]
        self._convert = convert
        self._memo: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        try:
            return self._memo[value]
        except KeyError:
            python = self._convert(value) if self._convert else value
            adapted = self._memo[value] = self._field.get_db_prep_save(python, self._connection)
            return adapted
