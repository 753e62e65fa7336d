"""What every domain's tables share: the declarative base and column types that behave the same
on SQLite and PostgreSQL. Each domain keeps its own tables in its `models.py`; `all_tables()`
imports them all (Alembic and the tests compare the migrations against it)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, MetaData, Numeric, String, TypeDecorator, bindparam
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql._typing import _ColumnExpressionArgument
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# The domains whose `models` modules hold tables.
DOMAINS = ("queue", "accounting", "warehouse", "jobs")


class Base(DeclarativeBase):
    """Base class of all models."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def all_tables() -> MetaData:
    """The metadata with every domain's tables registered."""
    import importlib

    for domain in DOMAINS:
        importlib.import_module(f"backoffice.{domain}.models")
    return Base.metadata


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp; SQLite stores it naive, this type restores the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float).

    Sum these in Python (or on PostgreSQL only): SQLite would add the text as floats.
    """

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 4))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value


class ExactRate(ExactDecimal):
    """An exact exchange rate: Shoptet sends 8 decimals, which ExactDecimal's scale 4 would round."""

    impl = Numeric(18, 8)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 8))


# `column + amount` on an ExactDecimal column, added by the database inside one UPDATE.
# A read-then-write of a running total loses an update when two writers overlap; `SET total =
# exact_add(total, :x)` does not, because the database adds to the row as it is when the write
# lands (PostgreSQL re-reads a row it waited for; SQLite has one writer). PostgreSQL adds its
# NUMERICs exactly. SQLite keeps ExactDecimal as text (its NUMERIC is a float), so there the sum
# is taken in doubles and printed back at the column's 4 decimals: inputs of at most 4 decimals
# and below 10^11 come back exact (a double carries 15-16 significant digits).
SCALE = 4  # ExactDecimal's Numeric(18, 4)


class exact_add(FunctionElement[Decimal]):  # a SQL function, so named like one
    """`COALESCE(column, 0) + amount`, exact on both databases; NULL counts as zero."""

    type = ExactDecimal()
    inherit_cache = True
    name = "exact_add"

    def __init__(self, column: _ColumnExpressionArgument[Decimal | None], amount: Decimal) -> None:
        # Bound as ExactDecimal: a Decimal on PostgreSQL, its exact text on SQLite.
        super().__init__(column, bindparam(None, amount, type_=ExactDecimal()))


@compiles(exact_add)
def _numeric(element: exact_add, compiler: SQLCompiler, **kw: Any) -> str:
    column, amount = (compiler.process(c, **kw) for c in element.clauses)
    return f"COALESCE({column}, 0) + {amount}"


@compiles(exact_add, "sqlite")
def _sqlite_text(element: exact_add, compiler: SQLCompiler, **kw: Any) -> str:
    column, amount = (compiler.process(c, **kw) for c in element.clauses)
    return f"printf('%.{SCALE}f', COALESCE({column}, 0) + {amount})"
