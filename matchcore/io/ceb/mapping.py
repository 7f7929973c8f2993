"""The CEB message shapes matchcore reads and writes, declared once (see ceb/FIELDS.md).

Each document type names its message root, document, head and list elements, and maps XML
elements to the canonical columns of SPEC §2. Reader, writer and streaming all use these maps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...schema import TABLES, Kind

#: XML namespace of every CEB message.
NAMESPACE = "http://www.chinaport.gov.cn/ceb"
NS = "{" + NAMESPACE + "}"

#: appType of a delete (1 is new, 2 modify).
APP_TYPE_DELETE = "3"

#: Head elements every document carries besides its mapped columns.
COMMON_HEAD = ("guid", "appType", "appTime", "appStatus")

#: Internal columns read_ceb adds to every document table, for tracing rows back to the XML.
FILE_COLUMN = "_file"  # the file (or archive member) label
MESSAGE_COLUMN = "_message"  # the message guid attribute
DOCUMENT_COLUMN = "_document"  # the document guid
INDEX_COLUMN = "_index"  # 1-based position of the document in its message
TRACE_COLUMNS = (FILE_COLUMN, MESSAGE_COLUMN, DOCUMENT_COLUMN, INDEX_COLUMN)


@dataclass(frozen=True)
class DocumentSpec:
    """One CEB document type: element names and the element -> column maps of head and list."""

    doc_type: str  # streaming tag: order | payment | waybill | inventory
    message: str  # root element, e.g. CEB311Message
    document: str  # document element, e.g. Order
    head: str  # head element, e.g. OrderHead
    table: str  # canonical table of the head
    head_columns: tuple[tuple[str, str], ...]  # (element, column)
    folder: str  # sub-directory write_ceb writes this type to
    list_element: str | None = None  # list element, e.g. OrderList
    list_table: str | None = None  # canonical table of the list rows (None: lists ignored)
    list_columns: tuple[tuple[str, str], ...] = ()
    inherited: tuple[tuple[str, str], ...] = ()  # (head column, list column) copied to lines

    @property
    def code(self) -> str:
        """The message code, e.g. CEB311."""
        return self.message.removesuffix("Message")


ORDER = DocumentSpec(
    doc_type="order",
    message="CEB311Message",
    document="Order",
    head="OrderHead",
    table="orders",
    folder="orders",
    head_columns=(
        ("orderNo", "order_no"),
        ("ebpCode", "ebp_code"),
        ("ebpName", "ebp_name"),
        ("ebcCode", "ebc_code"),
        ("ebcName", "ebc_name"),
        ("goodsValue", "goods_value"),
        ("freight", "freight"),
        ("discount", "discount"),
        ("taxTotal", "tax_total"),
        ("acturalPaid", "actual_paid"),  # spelled so in the standard
        ("currency", "currency"),
        ("buyerRegNo", "buyer_reg_no"),
        ("buyerName", "buyer_name"),
        ("buyerTelephone", "buyer_telephone"),
        ("buyerIdType", "buyer_id_type"),
        ("buyerIdNumber", "buyer_id_number"),
        ("payCode", "pay_code"),
        ("payTransactionId", "pay_transaction_id"),
        ("consignee", "consignee"),
        ("consigneeTelephone", "consignee_telephone"),
        ("consigneeAddress", "consignee_address"),
        ("note", "note"),
    ),
    list_element="OrderList",
    list_table="order_items",
    list_columns=(
        ("gnum", "gnum"),
        ("itemNo", "item_no"),
        ("itemName", "item_name"),
        ("barCode", "bar_code"),
        ("unit", "unit"),
        ("qty", "qty"),
        ("price", "price"),
        ("totalPrice", "total_price"),
        ("country", "country"),
    ),
    inherited=(("ebp_code", "ebp_code"), ("order_no", "order_no")),
)

PAYMENT = DocumentSpec(
    doc_type="payment",
    message="CEB411Message",
    document="Payment",
    head="PaymentHead",
    table="payments",
    folder="payments",
    head_columns=(
        ("payCode", "pay_code"),
        ("payTransactionId", "pay_transaction_id"),
        ("orderNo", "order_no"),
        ("ebpCode", "ebp_code"),
        ("payerIdType", "payer_id_type"),
        ("payerIdNumber", "payer_id_number"),
        ("payerName", "payer_name"),
        ("amountPaid", "amount_paid"),
        ("currency", "currency"),
        ("payTime", "pay_time"),
    ),
)

WAYBILL = DocumentSpec(
    doc_type="waybill",
    message="CEB511Message",
    document="Logistics",
    head="LogisticsHead",
    table="waybills",
    folder="waybills",
    head_columns=(
        ("logisticsCode", "logistics_code"),
        ("logisticsNo", "logistics_no"),
        ("orderNo", "order_no"),
        ("ebpCode", "ebp_code"),
        ("freight", "freight"),
        ("insuredFee", "insured_fee"),
        ("weight", "weight"),
        ("consignee", "consignee"),
        ("consigneeAddress", "consignee_address"),
        ("consigneeTelephone", "consignee_telephone"),
    ),
)

INVENTORY = DocumentSpec(
    doc_type="inventory",
    message="CEB621Message",
    document="Inventory",
    head="InventoryHead",
    table="inventories",
    folder="inventories",
    head_columns=(
        ("orderNo", "order_no"),
        ("ebpCode", "ebp_code"),
        ("ebcCode", "ebc_code"),
        ("logisticsCode", "logistics_code"),
        ("logisticsNo", "logistics_no"),
        ("agentCode", "agent_code"),
        ("tradeMode", "trade_mode"),
        ("buyerIdNumber", "buyer_id_number"),
    ),
    # InventoryList lines repeat the order lines; SPEC has no table for them.
    list_element="InventoryList",
)

#: Every document type, in SPEC §2 table order.
DOCUMENTS: tuple[DocumentSpec, ...] = (ORDER, PAYMENT, WAYBILL, INVENTORY)
BY_MESSAGE: dict[str, DocumentSpec] = {spec.message: spec for spec in DOCUMENTS}

#: Tables that have no CEB message: write_ceb puts them beside the XML as Parquet.
REFERENCE_TABLES = ("products", "enterprises", "hs_lists", "quota_ledger")
#: Order lines whose order is absent cannot sit in a CEB311 message; kept beside it as Parquet.
ORPHAN_LINES_FILE = "orphan_order_items.parquet"

#: The canonical column a head's appTime maps to (payments have none: theirs is pay_time).
APP_TIME_COLUMN = "app_time"


def column_kind(table: str, column: str) -> Kind | None:
    """The schema kind of a canonical column, or None for columns outside the schema."""
    try:
        return TABLES[table].column(column).kind
    except KeyError:
        return None


def required_elements(table: str, columns: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Elements whose canonical column is required by SPEC §2 (besides appType/appTime)."""
    schema = TABLES[table]
    return tuple(el for el, col in columns if col in schema.required_columns)


def time_elements(spec: DocumentSpec) -> tuple[str, ...]:
    """Head elements holding a yyyyMMddHHmmss time, appTime included."""
    extra = tuple(el for el, col in spec.head_columns if column_kind(spec.table, col) is Kind.TIME)
    return ("appTime", *extra)


def number_elements(table: str, columns: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Elements whose canonical column is a decimal number (money, qty) or an integer."""
    numeric = (Kind.MONEY, Kind.QTY, Kind.INT)
    return tuple(el for el, col in columns if column_kind(table, col) in numeric)
