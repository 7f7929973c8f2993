"""The compiled text scan gives the same facts as the Polars expressions.

`plain_text` (no value needs NFKC or white-space work) and `trimmed` (no value empty or with a
space at an end) decide which cleaning steps a text column skips, and the flagged rows (needing
cleaning, trimming, or upper case in an ID number) are the only ones cleaned, so the scan
must agree with the expressions on
every column: the characters at the edges of the plain ranges, every kind of
white space, values inline in a string view (<= 12 bytes) and in its data buffers, nulls,
slices and several chunks.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore import normalise
from matchcore.schema import TABLES, Kind

from .conftest import VALID_ROWS

text_scan = pytest.importorskip("matchcore._native.text_scan", reason="compiled core not built")

# Edges of the plain ranges (ASCII, U+4E00-U+9FFF), ASCII and Unicode white space, NFKC-changed
# characters (full-width, ligature), 2- and 4-byte UTF-8, and C0 controls that are not \s.
_CHARS = (
    "aZ09-|~\x00\x7f \t\n\x0b\x0c\r\x1c\x1f"
    "\x80\x85\xa0é\u3000\u2003\u4dff\u4e00\u4e01\u9fff\ua000张三李四"
    "Ｏ３ﬁ\U0001f600\U00020000"
)
_texts = st.lists(
    st.one_of(st.none(), st.text(alphabet=_CHARS, max_size=20)), min_size=0, max_size=30
)


def _expected(series: pl.Series) -> tuple[bool, bool]:
    facts = normalise._text_facts(pl.col(series.name), Kind.TEXT)
    found = series.to_frame().select(**facts).row(0, named=True)
    return found["plain_text"], found["trimmed"]


def _arrow(series: pl.Series) -> pa.Array:
    return series.to_arrow(compat_level=pl.CompatLevel.newest())  # string_view


def _scanned(series: pl.Series) -> tuple[bool, bool]:
    return text_scan.text_facts(_arrow(series))


def _rows_expected(series: pl.Series, lower: bool) -> list[int]:
    """`text_scan.row_flags` by Polars expressions."""
    values = pl.col(series.name)
    edge = (values.str.len_bytes() == 0) | values.str.starts_with(" ") | values.str.ends_with(" ")
    bits = [
        (values.str.contains(normalise._NEEDS_CLEANING), normalise._NEEDS_CLEANING_BIT),
        (edge, normalise._EDGE_BIT),
        (values.str.contains("[a-z]") & lower, normalise._LOWER_BIT),
    ]
    flags = pl.sum_horizontal([pl.when(found).then(bit).otherwise(0) for found, bit in bits])
    return series.to_frame().select(flags.fill_null(0)).to_series().to_list()


def _rows_scanned(arrow: pa.Array | pa.ChunkedArray, lower: bool) -> list[int]:
    return list(text_scan.row_flags(arrow, lower))


@settings(max_examples=400, deadline=None)
@given(values=_texts, lower=st.booleans())
def test_scan_agrees_with_the_expressions(values: list[str | None], lower: bool) -> None:
    series = pl.Series("v", values, dtype=pl.String)
    assert _scanned(series) == _expected(series)
    assert _rows_scanned(_arrow(series), lower) == _rows_expected(series, lower)


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(_texts, min_size=2, max_size=4), start=st.integers(0, 5))
def test_scan_agrees_on_chunks_and_slices(parts: list[list[str | None]], start: int) -> None:
    chunked = pl.concat([pl.Series("v", part, dtype=pl.String) for part in parts], rechunk=False)
    sliced = chunked.slice(start)
    assert _scanned(chunked) == _expected(chunked)
    assert _scanned(sliced) == _expected(sliced)
    assert text_scan.text_facts(_arrow(chunked).slice(start)) == _expected(sliced)
    arrays = [_arrow(pl.Series("v", part, dtype=pl.String)) for part in parts]
    assert text_scan.text_facts(pa.chunked_array(arrays, pa.string_view())) == _expected(chunked)
    assert _rows_scanned(_arrow(chunked).slice(start), True) == _rows_expected(sliced, True)
    chunks = pa.chunked_array(arrays, pa.string_view())
    assert _rows_scanned(chunks, True) == _rows_expected(chunked, True)


@pytest.mark.parametrize(
    ("values", "facts"),
    [
        (["O1", "ORDER-0000000000001", None], (True, True)),
        (["张三", "李 四"], (True, True)),
        (["x  y"], (False, True)),  # two spaces
        (["a\tb"], (False, True)),
        (["Ｏ３"], (False, True)),  # full width: NFKC changes it
        (["a long value with an end space "], (True, False)),  # in a data buffer
        ([""], (True, False)),
        ([None], (True, True)),
    ],
)
def test_scan_facts(values: list[str | None], facts: tuple[bool, bool]) -> None:
    series = pl.Series("v", values, dtype=pl.String)
    assert _scanned(series) == facts == _expected(series)


def test_scan_refuses_other_layouts() -> None:
    with pytest.raises(TypeError, match="string_view"):
        text_scan.text_facts(pl.Series("v", ["a"]).to_arrow())  # large_string
    with pytest.raises(TypeError, match="string_view"):
        text_scan.row_flags(pl.Series("v", ["a"]).to_arrow())


#: Per column: clean, padded, and needing NFKC or white-space work, in different rows.
_MESSY_ORDERS = [
    {"order_no": "O1", "ebp_code": "E1", "buyer_name": "张三", "currency": "142"},
    {"order_no": "O2 ", "ebp_code": "Ｅ2", "buyer_name": "李\u3000四", "currency": ""},
    {"order_no": "O3", "ebp_code": "E1", "buyer_name": None, "goods_value": "x"},
    {"order_no": "O4", "ebp_code": "E1", "buyer_id_number": " 11010519491231002x\t"},
]


def test_profiles_are_the_same_without_the_scan(monkeypatch, make_raw) -> None:
    raw = make_raw("orders", *_MESSY_ORDERS)
    scanned = normalise._profiles(raw, TABLES["orders"])
    assert scanned["ebp_code"].row_flags.to_list() == [0, 1, 0, 0]
    assert scanned["order_no"].row_flags.to_list() == [0, 2, 0, 0]  # plain text, padded
    assert scanned["buyer_id_number"].row_flags.to_list() == [0, 0, 0, 1 | 2 | 4]
    assert scanned["ebc_code"].row_flags is None  # all canonical
    monkeypatch.setattr(normalise, "_text_scan", None)
    assert normalise._profiles(raw, TABLES["orders"]) == scanned


def test_tables_are_the_same_without_the_scan(monkeypatch, make_raw) -> None:
    raw = make_raw("orders", *_MESSY_ORDERS)
    scanned = normalise.normalise_table(raw, "orders")
    assert scanned[0]["order_no"].to_list() == ["O1", "O2", "O4"]
    assert scanned[0]["ebp_code"].to_list() == ["E1", "E2", "E1"]  # NFKC on the flagged row
    assert scanned[0]["buyer_name"][1] == "李 四"
    assert scanned[0]["buyer_id_number"][2] == "11010519491231002X"
    assert scanned[1]["row"].to_list() == [3, 3]  # buyer_name missing, goods_value not a number
    monkeypatch.setattr(normalise, "_text_scan", None)
    unscanned = normalise.normalise_table(raw, "orders")
    assert scanned[0].equals(unscanned[0])
    assert scanned[1].equals(unscanned[1])


#: Text columns of orders of every text kind: code, ID number (upper-cased), text, enum, digits.
_TEXT_COLUMNS = ("order_no", "buyer_id_number", "buyer_name", "buyer_id_type", "currency")


@settings(max_examples=150, deadline=None)
@given(
    columns=st.fixed_dictionaries({name: _texts for name in _TEXT_COLUMNS}),
    split=st.integers(0, 30),
)
def test_flagged_rows_are_cleaned_as_without_the_scan(
    columns: dict[str, list[str | None]], split: int
) -> None:
    """Only flagged rows are cleaned with the scan; every value and reject is the same, also
    when the raw columns come in two chunks."""
    height = max(1, *map(len, columns.values()))
    valid = {name: [value] * height for name, value in VALID_ROWS["orders"].items()}
    drawn = {name: (values * height)[:height] for name, values in columns.items() if values}
    frame = {**valid, **drawn}
    whole = pl.DataFrame(frame, schema={name: pl.String for name in frame})
    raw = pl.concat([whole.slice(0, split), whole.slice(split)], rechunk=False)
    scanned = normalise.normalise_table(raw, "orders")
    unscanned_module = normalise._text_scan
    try:
        normalise._text_scan = None
        unscanned = normalise.normalise_table(raw, "orders")
    finally:
        normalise._text_scan = unscanned_module
    assert scanned[0].equals(unscanned[0])
    assert scanned[1].equals(unscanned[1])
