"""Bulk inserts and upserts as one statement per table, without the ORM's per-object cost.

`bulk_create` builds a model instance and walks the compiler for every value: for the
price tick's ~485 `LatestPrice` rows that was 16 ms of its 21 ms of writes, and for a
wallets scan batch it cost more than the inserts themselves (docs/benchmarks/prices.md,
docs/benchmarks/wallets.md). Both apps write through `insert_rows` (values already adapted;
the wallets scanner memoises its own) or `bulk_upsert` (adapts each column with the
field's own database preparation, JSON through orjson).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.db import connections, models, router
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.constants import OnConflict

#: PostgreSQL's limit of bind parameters per statement.
PG_MAX_PARAMS = 65_535
#: Integer columns whose database value is the Python int itself.
_INTEGER_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


def _dumps(value: Any) -> str:
    # NaN and infinities become `null`, which is also all that PostgreSQL's jsonb accepts.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class OrjsonEncoder(json.JSONEncoder):
    """`json.dumps(value, cls=OrjsonEncoder)` through orjson (Django's JSON adapters call `encode`)."""

    def encode(self, o: Any) -> str:
        return _dumps(o)


def _orjson_text(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _adapter(field: models.Field[Any, Any], connection: Any) -> Callable[[Any], Any]:
    """A function turning a Python value into the parameter Django would send for `field`."""
    if isinstance(field, models.JSONField):
        if type(connection.ops).adapt_json_value is BaseDatabaseOperations.adapt_json_value:
            return _orjson_text  # the generic adapter is `json.dumps(value, cls=encoder)`: text
        return lambda value: None if value is None else connection.ops.adapt_json_value(value, OrjsonEncoder)
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if target.get_internal_type() in _INTEGER_TYPES:
        return lambda value: value if type(value) is int else field.get_db_prep_save(value, connection)
    if isinstance(field, models.DecimalField):
        # What DecimalField.get_db_prep_save does for a float, without its generic path.
        ctx, adapt = field.context, connection.ops.adapt_decimalfield_value
        digits, places = field.max_digits, field.decimal_places

        def decimal(value: Any) -> Any:
            if isinstance(value, float):
                return adapt(ctx.create_decimal_from_float(value), digits, places)
            return field.get_db_prep_save(value, connection)

        return decimal
    if isinstance(field, models.DateTimeField):
        # A tick stamps every row with the same instant: convert it once.
        memo: list[Any] = [object(), None]

        def stamp(value: Any) -> Any:
            if value is not memo[0]:
                memo[0], memo[1] = value, field.get_db_prep_save(value, connection)
            return memo[1]

        return stamp
    return lambda value: field.get_db_prep_save(value, connection)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The concrete field `name` (or attribute name: `symbol_id`) of `model`."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ValueError(f"{model.__name__}.{name} is not a concrete column")
    return field


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    params: Sequence[Sequence[Any]],
    *,
    on_conflict: OnConflict,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
    using: str | None = None,
) -> None:
    """Insert rows of values already adapted for the database, in one statement per table.

    The SQL is the connection's own (`INSERT OR IGNORE` / `ON CONFLICT … DO NOTHING`, or
    `ON CONFLICT … DO UPDATE`), as `bulk_create` would write it. SQLite and others run one
    prepared statement for every row (`executemany`: sqlite3's C loop, no 999-parameter
    limit); PostgreSQL gets multi-row `VALUES` in chunks under its parameter limit. With
    `OnConflict.UPDATE`, rows repeating a key keep the last one (one PostgreSQL statement
    may not update a row twice).
    """
    if not params:
        return
    connection = connections[using or router.db_for_write(model)]
    ops, qn = connection.ops, connection.ops.quote_name
    concrete = [_field(model, name) for name in fields]
    if on_conflict is OnConflict.UPDATE:
        key = [list(fields).index(name) for name in unique_fields]
        params = list({tuple(row[i] for i in key): row for row in params}.values())
    suffix = ops.on_conflict_suffix_sql(
        concrete,
        on_conflict,
        [_field(model, name).column for name in update_fields],
        [_field(model, name).column for name in unique_fields],
    )
    head = (
        f"{ops.insert_statement(on_conflict=on_conflict)} {qn(model._meta.db_table)} "
        f"({', '.join(qn(str(f.column)) for f in concrete)}) VALUES "
    )
    one = "(" + ", ".join(["%s"] * len(concrete)) + ")"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(f"{head}{one} {suffix}", params)
            return
        per = max(1, PG_MAX_PARAMS // len(concrete))
        for i in range(0, len(params), per):
            chunk = params[i : i + per]
            cursor.execute(f"{head}{', '.join([one] * len(chunk))} {suffix}", [v for row in chunk for v in row])


def bulk_upsert(
    model: type[models.Model],
    rows: Sequence[Sequence[Any]],
    *,
    fields: Sequence[str],
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
    using: str = "default",
) -> int:
    """Insert `rows` (Python values in `fields` order, by attribute name: `symbol_id`), or
    update `update_fields` of the row with the same `unique_fields`. Returns how many rows
    were sent (rows repeating a key count once: the last one wins)."""
    if not rows:
        return 0
    key = [list(fields).index(name) for name in unique_fields]
    rows = list({tuple(row[i] for i in key): row for row in rows}.values())
    connection = connections[using]
    adapters = [_adapter(_field(model, name), connection) for name in fields]
    params = [[adapt(value) for adapt, value in zip(adapters, row, strict=True)] for row in rows]
    insert_rows(
        model,
        fields,
        params,
        on_conflict=OnConflict.UPDATE,
        unique_fields=unique_fields,
        update_fields=update_fields,
        using=using,
    )
    return len(rows)
