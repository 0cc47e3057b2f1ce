"""Bulk upserts as one `INSERT … ON CONFLICT DO UPDATE` statement, without the ORM's per-object cost.

`bulk_create(update_conflicts=True)` builds a model instance and walks the compiler for
every value: for the tick's ~485 `LatestPrice` rows that was 16 ms of the tick's 21 ms of
writes on SQLite, in two statements (bench/prices_tick.py, docs/benchmarks/prices.md).
Here each column is adapted with the field's own database preparation (JSON through
orjson), and the rows go out as one statement: `executemany` of one prepared statement on
SQLite, one multi-row `VALUES` on PostgreSQL (SQLite ≥ 3.24 and PostgreSQL ≥ 9.5 both
speak `ON CONFLICT … DO UPDATE`). Other databases fall back to `bulk_create`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from django.db import connections, models
from django.db.backends.base.operations import BaseDatabaseOperations

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


def _column(field: models.Field[Any, Any]) -> str:
    return str(field.column)


def bulk_upsert(
    model: type[models.Model],
    rows: Sequence[Sequence[Any]],
    *,
    fields: Sequence[str],
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
    using: str = "default",
) -> int:
    """Insert `rows` (values in `fields` order, by attribute name: `symbol_id`), or update
    `update_fields` of the row with the same `unique_fields`. Returns how many rows were sent.

    Rows repeating a key: the last one wins, as one upsert after the other would do (one
    PostgreSQL statement may not update a row twice).
    """
    if not rows:
        return 0
    key = [fields.index(name) for name in unique_fields]
    rows = list({tuple(row[i] for i in key): row for row in rows}.values())
    connection = connections[using]
    concrete = [_field(model, name) for name in fields]
    if connection.vendor not in ("sqlite", "postgresql"):
        model._default_manager.using(using).bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in rows],
            update_conflicts=True,
            unique_fields=[_field(model, n).name for n in unique_fields],
            update_fields=[_field(model, n).name for n in update_fields],
        )
        return len(rows)
    quote = connection.ops.quote_name
    columns = [quote(_column(f)) for f in concrete]
    conflict = ", ".join(quote(_column(_field(model, n))) for n in unique_fields)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (quote(_column(_field(model, n))) for n in update_fields))
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    adapters = [_adapter(f, connection) for f in concrete]
    params = [[adapt(value) for adapt, value in zip(adapters, row, strict=True)] for row in rows]
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # One prepared statement run for every row by sqlite3's C loop (no 999-parameter
            # limit, unlike a multi-row VALUES).
            cursor.executemany(head + one + tail, params)
        else:
            per = max(1, PG_MAX_PARAMS // len(columns))
            for i in range(0, len(params), per):
                chunk = params[i : i + per]
                cursor.execute(head + ", ".join([one] * len(chunk)) + tail, [v for row in chunk for v in row])
    return len(rows)
