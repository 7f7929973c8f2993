"""The canonical schema of SPEC §1-2, declared once.

Every reader produces these tables, every engine consumes them. A column has a *kind* that says
how it is converted and normalised; the kind decides the canonical Polars dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl


class Kind(StrEnum):
    """How a column is read and normalised (SPEC §1)."""

    TEXT = "text"  # NFKC, trimmed, inner white space collapsed, empty -> null
    CODE = "code"  # normalised like text, case-sensitive (order_no, enterprise codes, item_no)
    ID_NUMBER = "id_number"  # normalised text with ASCII letters upper-cased
    ENUM = "enum"  # normalised text, lower-cased, must be one of Column.values
    DIGITS = "digits"  # a code made of ASCII digits only (hs_code, hs_prefix)
    MONEY = "money"  # int64 ten-thousandths of CNY
    QTY = "qty"  # int64 ten-thousandths of the declared unit
    INT = "int"  # int64
    TIME = "time"  # Datetime(us, UTC); naive inputs are Asia/Shanghai
    RATE = "rate"  # float64 fraction
    ROLES = "roles"  # UInt8 bit set of ROLE_BITS, from a list or a comma-separated string


CANONICAL_DTYPES: dict[Kind, pl.DataType] = {
    Kind.TEXT: pl.String(),
    Kind.CODE: pl.String(),
    Kind.ID_NUMBER: pl.String(),
    Kind.ENUM: pl.String(),
    Kind.DIGITS: pl.String(),
    Kind.MONEY: pl.Int64(),
    Kind.QTY: pl.Int64(),
    Kind.INT: pl.Int64(),
    Kind.TIME: pl.Datetime("us", "UTC"),
    Kind.RATE: pl.Float64(),
    Kind.ROLES: pl.UInt8(),
}

#: Party roles of an enterprise filing, as bits of the canonical `roles` column.
ROLE_BITS: dict[str, int] = {"ebp": 1, "ebc": 2, "pay": 4, "logistics": 8, "agent": 16}

#: Ten-thousandths per CNY (and per unit of qty).
MONEY_SCALE = 10_000

#: Time zone of naive input times and of calendar years (SPEC §1).
CHINA_TZ = "Asia/Shanghai"

#: Internal columns every canonical table carries: the 1-based row number in its source.
ROW = "_row"
#: Derived order columns (normalisation adds them; engines read them instead of doing time zones).
APP_YEAR = "_app_year"  # Int32: calendar year of app_time in Asia/Shanghai
APP_YMD = "_app_ymd"  # Int64: YYYYMMDD of app_time in Asia/Shanghai (years reach ±294,000)


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, kind, whether required, and its default for nulls."""

    name: str
    kind: Kind
    required: bool = False
    default: object = None  # value substituted for null (after normalisation)
    values: tuple[str, ...] = ()  # allowed values of an ENUM
    digits: tuple[int, int] | None = None  # allowed length range of a DIGITS code
    identity: bool = False  # personal data: never logged, masked in outputs

    @property
    def dtype(self) -> pl.DataType:
        return CANONICAL_DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    """One canonical table: columns, key (for uniqueness and linking), whether it is optional."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    unique: bool  # duplicate keys are rejects (first row in input order kept)
    optional: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def polars_schema(self) -> dict[str, pl.DataType]:
        """The canonical dtypes of this table's columns, plus the internal row number."""
        schema: dict[str, pl.DataType] = {c.name: c.dtype for c in self.columns}
        schema[ROW] = pl.Int64()
        return schema


def _c(name: str, kind: Kind, required: bool = False, **kw: object) -> Column:
    return Column(name, kind, required, **kw)  # type: ignore[arg-type]


T, CODE, ID, E, D = Kind.TEXT, Kind.CODE, Kind.ID_NUMBER, Kind.ENUM, Kind.DIGITS
M, Q, INT, TM, RT = Kind.MONEY, Kind.QTY, Kind.INT, Kind.TIME, Kind.RATE
R = True

ORDERS = Table(
    "orders",
    (
        _c("order_no", CODE, R),
        _c("ebp_code", CODE, R),
        _c("ebc_code", CODE, R),
        _c("goods_value", M, R),
        _c("freight", M, R),
        _c("discount", M, default=0),
        _c("tax_total", M, R),
        _c("actual_paid", M, R),
        _c("currency", CODE, default="142"),
        _c("buyer_id_type", CODE, default="1"),
        _c("buyer_id_number", ID, R, identity=True),
        _c("buyer_name", T, R, identity=True),
        _c("buyer_telephone", T, identity=True),
        _c("pay_code", CODE),
        _c("pay_transaction_id", CODE),
        _c("consignee", T, R, identity=True),
        _c("consignee_telephone", T, identity=True),
        _c("consignee_address", T, identity=True),
        _c("app_time", TM, R),
        _c("ebp_name", T),
        _c("ebc_name", T),
        _c("note", T),
    ),
    key=("ebp_code", "order_no"),
    unique=False,
)

ORDER_ITEMS = Table(
    "order_items",
    (
        _c("order_no", CODE, R),
        _c("ebp_code", CODE, R),
        _c("gnum", INT, R),
        _c("item_no", CODE, R),
        _c("item_name", T),
        _c("qty", Q, R),
        _c("unit", CODE),
        _c("price", M, R),
        _c("total_price", M, R),
        _c("country", CODE),
        _c("bar_code", CODE),
    ),
    key=("ebp_code", "order_no", "gnum"),
    unique=True,
)

PAYMENTS = Table(
    "payments",
    (
        _c("pay_code", CODE, R),
        _c("pay_transaction_id", CODE, R),
        _c("order_no", CODE, R),
        _c("ebp_code", CODE, R),
        _c("payer_id_type", CODE),
        _c("payer_id_number", ID, R, identity=True),
        _c("payer_name", T, R, identity=True),
        _c("amount_paid", M, R),
        _c("currency", CODE, default="142"),
        _c("pay_time", TM, R),
    ),
    key=("pay_code", "pay_transaction_id"),
    unique=False,
)

WAYBILLS = Table(
    "waybills",
    (
        _c("logistics_code", CODE, R),
        _c("logistics_no", CODE, R),
        _c("order_no", CODE),
        _c("ebp_code", CODE),
        _c("freight", M),
        _c("insured_fee", M),
        _c("weight", Q),
        _c("consignee", T, R, identity=True),
        _c("consignee_telephone", T, identity=True),
        _c("consignee_address", T, identity=True),
        _c("app_time", TM, R),
    ),
    key=("logistics_code", "logistics_no"),
    unique=False,
)

INVENTORIES = Table(
    "inventories",
    (
        _c("order_no", CODE, R),
        _c("ebp_code", CODE, R),
        _c("ebc_code", CODE, R),
        _c("logistics_code", CODE, R),
        _c("logistics_no", CODE, R),
        _c("agent_code", CODE, R),
        _c("trade_mode", E, R, values=("9610", "1210")),
        _c("buyer_id_number", ID, R, identity=True),
        _c("app_time", TM, R),
    ),
    key=("ebp_code", "order_no"),
    unique=True,
    optional=True,
)

PRODUCTS = Table(
    "products",
    (
        _c("ebc_code", CODE, R),
        _c("item_no", CODE, R),
        _c("hs_code", D, R, digits=(10, 10)),
        _c("item_record_no", CODE),
        _c("name", T),
        _c("vat_rate", RT, R),
        _c("consumption_tax_rate", RT, R),
        _c("status", E, R, values=("active", "revoked")),
        _c("valid_from", TM),
        _c("valid_to", TM),
    ),
    key=("ebc_code", "item_no"),
    unique=True,
)

HS_LISTS = Table(
    "hs_lists",
    (
        _c("hs_prefix", D, R, digits=(4, 10)),
        _c("list", E, R, values=("positive", "prohibited")),
    ),
    key=("hs_prefix", "list"),
    unique=False,
    optional=True,
)

ENTERPRISES = Table(
    "enterprises",
    (
        _c("code", CODE, R),
        _c("credit_code", CODE),
        _c("name", T),
        _c("roles", Kind.ROLES, R, values=tuple(ROLE_BITS)),
        _c("credit_class", E, R, values=("advanced", "general", "dishonest")),
        _c("status", E, R, values=("active", "abnormal", "revoked")),
        _c("valid_from", TM),
        _c("valid_to", TM),
    ),
    key=("code",),
    unique=True,
)

QUOTA_LEDGER = Table(
    "quota_ledger",
    (
        _c("buyer_id_number", ID, R, identity=True),
        _c("year", INT, R),
        _c("used", M, R),
    ),
    key=("buyer_id_number", "year"),
    unique=True,  # one starting figure per buyer and year (SPEC is silent; first row wins)
    optional=True,
)

#: Every input table, in the order of SPEC §2.
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        ORDERS,
        ORDER_ITEMS,
        PAYMENTS,
        WAYBILLS,
        INVENTORIES,
        PRODUCTS,
        HS_LISTS,
        ENTERPRISES,
        QUOTA_LEDGER,
    )
}
REQUIRED_TABLES = tuple(name for name, t in TABLES.items() if not t.optional)
OPTIONAL_TABLES = tuple(name for name, t in TABLES.items() if t.optional)

#: Identity columns (personal data) across all tables.
IDENTITY_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.identity)
