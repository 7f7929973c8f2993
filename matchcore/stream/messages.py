"""Streaming messages (SPEC §5): msgspec Structs tagged on `doc_type`, decoded strictly.

One struct per document (order with its item lines, payment, waybill, inventory), each with an
`op` (upsert | cancel) and a `revision`. Decoding checks types, amounts and keys; whatever fails
is a `BadMessage` with a reason (it never holds field values, so no identity data leaks).

msgspec checks types and bounds while decoding. Amount text is checked against `_MONEY_TEXT`
after it (a regex msgspec would run in Python for every amount), together with the checks
msgspec cannot express, in one call of a compiled `MessageCheck` (src_ext/intake.pyx) when the
extension is built; a message it does not accept goes through the Python checks, which decide
and give the reason, the same reason as when msgspec checked amounts itself (`_STRICT`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec
from msgspec import inspect

from ..money import format_money
from ..schema import MONEY_SCALE, TABLES
from .canonical import clean_text, id_number

_intake: ModuleType | None
try:
    from .._native import intake as _intake
except ImportError:  # not built: the Python checks do all the work
    _intake = None

# Amount text as the batch normaliser accepts it, limited to 14 whole digits so the
# ten-thousandths always fit int64; "-0" is allowed (not negative), any other sign is not.
_MONEY_TEXT = r"^\s*(\+?0*([0-9]{1,14}(\.[0-9]{0,4}0*)?|\.[0-9]{1,4}0*)|-0*(0(\.0*)?|\.0+))\s*$"
_MAX_WHOLE = 10**14
_MONEY_PATTERN = re.compile(_MONEY_TEXT)

_WholeAmount: TypeAlias = Annotated[int, msgspec.Meta(ge=0, lt=_MAX_WHOLE)]
_FloatAmount: TypeAlias = Annotated[float, msgspec.Meta(ge=0, lt=float(_MAX_WHOLE))]
#: An amount: text (checked against `_MONEY_TEXT` after decoding, see `_amounts_match`) or a
#: number in range.
Amount: TypeAlias = str | _WholeAmount | _FloatAmount
#: The same with the text checked by msgspec: what the `_STRICT` twins of the messages use.
_StrictAmount: TypeAlias = (
    Annotated[str, msgspec.Meta(pattern=_MONEY_TEXT)] | _WholeAmount | _FloatAmount
)
Key: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Text: TypeAlias = str | None
Op: TypeAlias = Literal["upsert", "cancel"]
OrderKey: TypeAlias = tuple[str, str]  # (ebp_code, order_no), canonical text

_CUSTOMS_TIME = re.compile(r"^\s*[0-9]{8}([0-9]{6})?\s*$")


def _required(table: str, *exclude: str) -> tuple[str, ...]:
    """Required columns of a canonical table (schema.py), less the ones a message keys on."""
    return tuple(c for c in TABLES[table].required_columns if c not in exclude)


class Item(msgspec.Struct, gc=False, omit_defaults=True, kw_only=True):
    """One order line (CEB311 list), carried inside its order."""

    gnum: int
    item_no: Text = None
    item_name: Text = None
    qty: Amount | None = None
    unit: Text = None
    price: Amount | None = None
    total_price: Amount | None = None
    country: Text = None
    bar_code: Text = None

    REQUIRED: ClassVar[tuple[str, ...]] = _required("order_items", "order_no", "ebp_code", "gnum")
    AMOUNTS: ClassVar[tuple[str, ...]] = ("qty", "price", "total_price")


class Document(msgspec.Struct, tag_field="doc_type", gc=False, omit_defaults=True, kw_only=True):
    """Fields every message has; subclasses add SPEC §2 columns (all optional when cancelling)."""

    op: Op = "upsert"
    revision: int = 0

    KEY: ClassVar[tuple[str, str]]
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    AMOUNTS: ClassVar[tuple[str, ...]] = ()
    TIMES: ClassVar[tuple[str, ...]] = ("app_time",)

    def key(self) -> tuple[str, str]:
        """The document's own key, canonical (see `canonical_code`)."""
        a, b = self.KEY
        return (canonical_code(getattr(self, a)) or "", canonical_code(getattr(self, b)) or "")


class Order(Document, tag="order"):
    """CEB311 order head with its lines. Key (ebp_code, order_no)."""

    order_no: Key
    ebp_code: Key
    ebc_code: Text = None
    goods_value: Amount | None = None
    freight: Amount | None = None
    discount: Amount | None = None
    tax_total: Amount | None = None
    actual_paid: Amount | None = None
    currency: Text = None
    buyer_id_type: Text = None
    buyer_id_number: Text = None
    buyer_name: Text = None
    buyer_telephone: Text = None
    pay_code: Text = None
    pay_transaction_id: Text = None
    consignee: Text = None
    consignee_telephone: Text = None
    consignee_address: Text = None
    app_time: Text = None
    ebp_name: Text = None
    ebc_name: Text = None
    note: Text = None
    items: list[Item] = []

    KEY = ("ebp_code", "order_no")
    REQUIRED = _required("orders", *KEY)
    AMOUNTS = ("goods_value", "freight", "discount", "tax_total", "actual_paid")


class Payment(Document, tag="payment"):
    """CEB411 payment. Key (pay_code, pay_transaction_id); links by (ebp_code, order_no)."""

    pay_code: Key
    pay_transaction_id: Key
    order_no: Text = None
    ebp_code: Text = None
    payer_id_type: Text = None
    payer_id_number: Text = None
    payer_name: Text = None
    amount_paid: Amount | None = None
    currency: Text = None
    pay_time: Text = None

    KEY = ("pay_code", "pay_transaction_id")
    REQUIRED = _required("payments", *KEY)
    AMOUNTS = ("amount_paid",)
    TIMES = ("pay_time",)


class Waybill(Document, tag="waybill"):
    """CEB511 waybill. Key (logistics_code, logistics_no); links by its order key or inventory."""

    logistics_code: Key
    logistics_no: Key
    order_no: Text = None
    ebp_code: Text = None
    freight: Amount | None = None
    insured_fee: Amount | None = None
    weight: Amount | None = None
    consignee: Text = None
    consignee_telephone: Text = None
    consignee_address: Text = None
    app_time: Text = None

    KEY = ("logistics_code", "logistics_no")
    REQUIRED = _required("waybills", *KEY)
    AMOUNTS = ("freight", "insured_fee", "weight")


class Inventory(Document, tag="inventory"):
    """CEB621 inventory. Key (ebp_code, order_no)."""

    order_no: Key
    ebp_code: Key
    ebc_code: Text = None
    logistics_code: Text = None
    logistics_no: Text = None
    agent_code: Text = None
    trade_mode: Text = None
    buyer_id_number: Text = None
    app_time: Text = None

    KEY = ("ebp_code", "order_no")
    REQUIRED = _required("inventories", *KEY)


Message: TypeAlias = Order | Payment | Waybill | Inventory
DOC_TYPES: tuple[str, ...] = ("order", "payment", "waybill", "inventory")


class VerdictEvent(msgspec.Struct, gc=False, omit_defaults=False):
    """One verdict version of one order; `verdict_id` = order key + version (deterministic).

    `verdict` is pass | review | reject (batch rules), incomplete (documents still `missing`
    after the completion window) or cancelled (the order was cancelled after a verdict).

    `reasons` and `missing` are tuples: the matcher keeps each order's last event, and one
    shared immutable tuple per reason mask costs no memory per order and leaves nothing per
    order for the cyclic garbage collector to walk (a list is always tracked).
    """

    verdict_id: str
    ebp_code: str
    order_no: str
    version: int
    verdict: str
    reasons: tuple[str, ...] = ()
    reason_mask: int = 0
    missing: tuple[str, ...] = ()
    pay_transaction_id: str | None = None
    logistics_no: str | None = None
    computed_tax: str | None = None
    limit_value: str | None = None

    def content(self) -> tuple[Any, ...]:
        """Everything but the id and version: what decides whether a verdict changed."""
        return (
            self.verdict,
            self.reasons,
            self.reason_mask,
            self.missing,
            self.pay_transaction_id,
            self.logistics_no,
            self.computed_tax,
            self.limit_value,
        )


def verdict_id(key: OrderKey, version: int) -> str:
    """The deterministic id of version `version` of the verdict of order `key`."""
    return f"{key[0]}/{key[1]}/{version}"


class BadMessage(Exception):
    """A message that cannot be accepted; `reason` is safe to log (no field values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _strict_twin(cls: Any, item: Any = None) -> Any:
    """A subclass of `cls` whose amount text msgspec checks (`_StrictAmount`), with `item` for
    its lines: it decodes what `cls` decodes and fails where `cls` fails or an amount's text
    does not match `_MONEY_TEXT`, with the reason msgspec gives (see `_checked`).

    Every field is declared again, in order, so the twin's fields keep the order of `cls`'s
    (msgspec reports the first missing required field in that order)."""
    fields: list[tuple[Any, ...]] = []
    for field in msgspec.structs.fields(cls):
        kind = field.type
        if field.name in cls.AMOUNTS:
            kind = _StrictAmount | None
        elif field.name == "items":
            kind = list[item]
        if field.default_factory is not msgspec.NODEFAULT:
            fields.append((field.name, kind, msgspec.field(default_factory=field.default_factory)))
        elif field.default is not msgspec.NODEFAULT:
            fields.append((field.name, kind, field.default))
        else:
            fields.append((field.name, kind))
    config = cls.__struct_config__
    return msgspec.defstruct(
        f"Strict{cls.__name__}",
        fields,
        bases=(cls,),
        kw_only=True,
        tag_field=config.tag_field,
        tag=config.tag,
        omit_defaults=config.omit_defaults,
        gc=False,
    )


_STRICT_ITEM = _strict_twin(Item)
_STRICT_MESSAGE: Any = (
    _strict_twin(Order, _STRICT_ITEM)
    | _strict_twin(Payment)
    | _strict_twin(Waybill)
    | _strict_twin(Inventory)
)

# Decoders are built once and reused (msgspec caches the type plan inside them).
JSON_DECODER = msgspec.json.Decoder(Message)
MSGPACK_DECODER = msgspec.msgpack.Decoder(Message)
_STRICT_JSON = msgspec.json.Decoder(_STRICT_MESSAGE)
_STRICT_MSGPACK = msgspec.msgpack.Decoder(_STRICT_MESSAGE)
JSON_EVENT_ENCODER = msgspec.json.Encoder()
MSGPACK_ENCODER = msgspec.msgpack.Encoder()


def canonical_code(value: str | None) -> str | None:
    """Text as SPEC §1 compares it (see `canonical.clean_text`); used for the keys that join
    documents, so they link exactly as the batch normaliser links them."""
    return clean_text(value)


#: An ID number as compared: canonical text with ASCII letters upper-cased (as in a row).
canonical_id_number = id_number


def _amount_text(value: object) -> object:
    """Numbers -> decimal text with the batch's meaning (ints whole CNY; floats rounded x 10^4
    half-to-even), so one column holds one type; text is kept as sent."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_money(round(value * MONEY_SCALE))
    return value


def _canonical_amounts(obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, str):
            setattr(obj, name, _amount_text(value))


def _valid_time(text: str) -> bool:
    """ISO 8601 (with 'T' or space, optional offset) or the customs form yyyyMMdd[HHmmss]."""
    if _CUSTOMS_TIME.match(text):
        stripped = text.strip()
        fmt = "%Y%m%d%H%M%S" if len(stripped) == 14 else "%Y%m%d"
        try:
            datetime.strptime(stripped, fmt)
        except ValueError:
            return False
        return True
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _missing_required(obj: Any, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = getattr(obj, name)
        # White space only is missing too (normalised text that is empty is null, SPEC §1).
        if value is None or (value.__class__ is str and not value.strip()):
            return name
    return None


def _money_text(text: str) -> bool:
    """Amount text of the form `_MONEY_TEXT` (the check msgspec makes of a pattern)."""
    return _MONEY_PATTERN.search(text) is not None


def _amounts_match(message: Message) -> bool:
    """Every amount given as text has the form `_MONEY_TEXT`, in the message and its lines."""
    holders: list[Any] = [message, *message.items] if isinstance(message, Order) else [message]
    for holder in holders:
        for name in holder.AMOUNTS:
            value = getattr(holder, name)
            if value.__class__ is str and not _money_text(value):
                return False
    return True


def check_message(message: Message) -> Message:
    """Complete the checks msgspec cannot express; returns the message ready to store.

    Raises BadMessage for an empty key, a missing required field of an upsert, or a time that
    is not a valid time. Numeric amounts are turned into decimal text (see `_amount_text`).
    The Python checks: the reference, and what gives the reasons.
    """
    if not all(message.key()):
        raise BadMessage(f"{message_type(message)}: missing key ({', '.join(message.KEY)})")
    if message.op == "cancel":
        return message
    kind = message_type(message)
    missing = _missing_required(message, message.REQUIRED)
    if missing is not None:
        raise BadMessage(f"{kind}: required field {missing} is missing")
    for name in message.TIMES:
        value = getattr(message, name)
        if value is not None and not _valid_time(value):
            raise BadMessage(f"{kind}: field {name} is not a valid time")
    _canonical_amounts(message, message.AMOUNTS)
    if isinstance(message, Order):
        for position, item in enumerate(message.items):
            missing = _missing_required(item, Item.REQUIRED)
            if missing is not None:
                raise BadMessage(f"order: items[{position}]: required field {missing} is missing")
            _canonical_amounts(item, Item.AMOUNTS)
    return message


def _compiled_check(cls: Any, item: Any = None) -> Any:
    """The compiled `MessageCheck` of one message type (or of order lines)."""
    fields = cls.__struct_fields__

    def at(names: tuple[str, ...]) -> list[int]:
        return [fields.index(name) for name in names]

    assert _intake is not None
    return _intake.MessageCheck(
        at(getattr(cls, "KEY", ())),
        at(cls.REQUIRED),
        at(getattr(cls, "TIMES", ())),
        at(cls.AMOUNTS),
        cls.AMOUNTS,
        fields.index("op") if "op" in fields else -1,
        fields.index("items") if "items" in fields else -1,
        item,
        clean_text,  # the compiled `clean_text` when the extension is built
        _intake.Converter(_intake.VALID_TIME, _valid_time),
        _intake.Converter(_intake.MONEY_TEXT, _money_text),
    )


#: Message type -> its compiled check (empty when the extension is not built).
_CHECKS: dict[type, Any] = {}
if _intake is not None:
    _CHECKS = {cls: _compiled_check(cls) for cls in (Payment, Waybill, Inventory)}
    _CHECKS[Order] = _compiled_check(Order, _compiled_check(Item))


#: JSON or MessagePack bytes -> the message, when it is the usual one (decodes, and its compiled
#: check accepts it), in one compiled call; None for any other (see `decode_bytes` in
#: matcher.py, which then takes the Python path). None when the extension is not built.
decode_checked: Callable[[bytes], Message | None] | None = None
#: The compiled decoder `decode_checked` is the method of (for compiled callers).
checked_decoder: Any = None
if _intake is not None:
    checked_decoder = _intake.MessageDecoder(JSON_DECODER.decode, MSGPACK_DECODER.decode, _CHECKS)
    decode_checked = checked_decoder.decode


def compiled_check(cls: Any) -> Any:
    """The compiled `MessageCheck` of a message type (None when the extension is not built)."""
    return _CHECKS.get(cls)


def direct_fields(cls: Any) -> list[tuple[str, str, int, bool, int, int]]:
    """Each field of a message type (or of order lines) as the compiled JSON intake reads it
    (src_ext/intake.pyx: `DirectPlan`): its JSON name, its attribute, what msgspec takes for it
    (a `FIELD_` kind: anything unexpected is `FIELD_OTHER` and must be given, so the compiled
    intake leaves every message of the type to msgspec), whether it must be given, and two
    bounds: a key's length in characters, a whole-number amount's range, an int's default."""
    assert _intake is not None
    info = inspect.type_info(cls)
    assert isinstance(info, inspect.StructType)
    return [(field.encode_name, field.name, *_direct_kind(field)) for field in info.fields]


def _direct_kind(field: inspect.Field) -> tuple[int, bool, int, int]:
    """(kind, must be given, bounds) of one field (see `direct_fields`)."""
    assert _intake is not None
    kind, default, required = field.type, field.default, field.required
    text = inspect.StrType(min_length=None, max_length=None, pattern=None)
    if isinstance(kind, inspect.StrType) and kind.pattern is None and required:
        return _intake.FIELD_KEY, True, kind.min_length or 0, kind.max_length or 2**62
    if isinstance(kind, inspect.UnionType) and default is None:
        members = kind.types
        if members == (text, inspect.NoneType()):
            return _intake.FIELD_TEXT, False, 0, 0
        whole = members[1] if len(members) == 4 else None
        if (
            isinstance(whole, inspect.IntType)
            and members[0] == text
            and isinstance(members[2], inspect.FloatType)
            and members[3] == inspect.NoneType()
            and whole.ge is not None
            and whole.lt is not None
            and (whole.gt, whole.le, whole.multiple_of) == (None, None, None)
        ):
            return _intake.FIELD_AMOUNT, False, whole.ge, whole.lt
    if kind == inspect.IntType() and (required or isinstance(default, int)):
        return _intake.FIELD_INT, required, 0 if required else default, 0
    if isinstance(kind, inspect.LiteralType) and default == "upsert" and "upsert" in kind.values:
        return _intake.FIELD_OP, False, 0, 0
    if (
        isinstance(kind, inspect.ListType)
        and isinstance(kind.item_type, inspect.StructType)
        and field.default_factory is list
    ):
        return _intake.FIELD_ITEMS, False, 0, 0
    return _intake.FIELD_OTHER, True, 0, 0


def message_type(message: Message) -> str:
    """The message's `doc_type` tag."""
    return message.__struct_config__.tag  # type: ignore[return-value]


def _validation_reason(exc: msgspec.MsgspecError, kind: str) -> str:
    # msgspec messages name the type and the path ("at `$.amount_paid`"), never the value.
    text = str(exc)
    where = text.rsplit(" - at ", 1)[1] if " - at " in text else ""
    if "Expected `int` >= 0" in text or "Expected `float` >= 0" in text or "matching regex" in text:
        return f"invalid amount (negative, malformed or more than 4 decimals) at {where}"
    if "missing required field" in text:
        return f"missing key: {text}"
    if isinstance(exc, msgspec.ValidationError):
        return f"schema: {text}"
    return f"undecodable {kind}: {text}"


def _checked(
    decode: Callable[[Any], Message], strict: Callable[[Any], Any], data: Any, kind: str
) -> Message:
    """`data` decoded by `decode` and checked, or BadMessage.

    When decoding fails or an amount does not match `_MONEY_TEXT`, the `_STRICT` twin of the
    decoder (which lets msgspec check amounts) tells why, as msgspec reports the first problem
    in the input: the reason is the one it always was.
    """
    try:
        message = decode(data)
    except msgspec.MsgspecError:
        message = None
    if message is not None:
        if _CHECKS and _CHECKS[message.__class__].accepts(message):
            return message
        if _amounts_match(message):
            return check_message(message)
    try:
        strict(data)
    except msgspec.MsgspecError as exc:
        raise BadMessage(_validation_reason(exc, kind)) from None
    raise BadMessage(f"undecodable {kind}: the strict and the plain decoder disagree")


def decode_json(raw: bytes | str) -> Message:
    """One JSON message -> a checked Message, or BadMessage."""
    return _checked(JSON_DECODER.decode, _STRICT_JSON.decode, raw, "JSON")


def decode_msgpack(raw: bytes) -> Message:
    """One MessagePack message -> a checked Message, or BadMessage."""
    return _checked(MSGPACK_DECODER.decode, _STRICT_MSGPACK.decode, raw, "MessagePack")


def from_mapping(data: dict[str, Any]) -> Message:
    """A message given as a Python mapping (CEB reader, tests) -> a checked Message."""
    return _checked(_convert, _strict_convert, data, "mapping")


def _convert(data: dict[str, Any]) -> Message:
    return msgspec.convert(data, Message)  # type: ignore[arg-type]


def _strict_convert(data: dict[str, Any]) -> Any:
    return msgspec.convert(data, _STRICT_MESSAGE)


def encode_message(message: Message) -> bytes:
    """A message as MessagePack (what the state log stores)."""
    return MSGPACK_ENCODER.encode(message)


def order_key_of(message: Message) -> OrderKey | None:
    """The order a document links to by its own fields (None: a waybill without an order key).

    A waybill that names only one of ebp_code / order_no links to nothing (internals: a null
    part matches nothing); it is reported as ("", "") so callers can tell it from "no key".
    """
    if isinstance(message, Order | Inventory):
        return message.key()
    ebp = canonical_code(message.ebp_code)
    order_no = canonical_code(message.order_no)
    if ebp is None and order_no is None:
        return None
    if ebp is None or order_no is None:
        return ("", "")
    return (ebp, order_no)


__all__ = [
    "BadMessage",
    "DOC_TYPES",
    "Document",
    "Inventory",
    "Item",
    "Message",
    "Order",
    "OrderKey",
    "Payment",
    "VerdictEvent",
    "Waybill",
    "canonical_code",
    "canonical_id_number",
    "check_message",
    "checked_decoder",
    "compiled_check",
    "decode_checked",
    "direct_fields",
    "decode_json",
    "decode_msgpack",
    "encode_message",
    "from_mapping",
    "message_type",
    "order_key_of",
    "verdict_id",
]
