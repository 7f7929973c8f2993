"""Text kinds (SPEC §1): NFKC, white space, ID upper-casing, enums, digit codes, roles."""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchcore.normalise import normalise_table


def _column(frame: pl.DataFrame, table: str, column: str) -> tuple[list[object], pl.DataFrame]:
    canonical, rejects = normalise_table(frame, table, f"{table}.csv")
    return canonical[column].to_list(), rejects


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ＡＢＣ１２３", "ABC123"),  # full-width letters and digits
        ("张\u3000三", "张 三"),  # ideographic space
        ("a\t\tb", "a b"),
        ("  lead and trail \n", "lead and trail"),
        ("x\u2003\u00a0 y", "x y"),  # em space, no-break space
        ("plain", "plain"),
        ("ｶﾀｶﾅ", "カタカナ"),  # half-width katakana
    ],
)
def test_text_is_nfkc_trimmed_and_collapsed(column_frame, raw: str, clean: str) -> None:
    values, rejects = _column(column_frame("orders", "note", [raw]), "orders", "note")
    assert rejects.is_empty()
    assert values == [clean]


def test_plain_and_messy_values_in_one_column(column_frame) -> None:
    # One messy value forces the full cleaning path for the whole column.
    frame = column_frame("orders", "order_no", ["A1", " A2 ", "Ａ3", "A 4"])
    values, _ = _column(frame, "orders", "order_no")
    assert values == ["A1", "A2", "A3", "A 4"]


def test_blank_text_is_null(column_frame) -> None:
    values, rejects = _column(
        column_frame("orders", "note", ["  ", "\u3000", "", None]), "orders", "note"
    )
    assert values == [None, None, None, None]
    assert rejects.is_empty()


def test_blank_required_text_is_rejected(column_frame) -> None:
    frame = column_frame("orders", "consignee", ["李四", " \u3000 "])
    values, rejects = _column(frame, "orders", "consignee")
    assert values == ["李四"]
    assert rejects.select("row", "column", "message").row(0) == (
        2,
        "consignee",
        "required value is missing",
    )


def test_codes_keep_their_case(column_frame) -> None:
    values, _ = _column(column_frame("orders", "order_no", ["ab-Cd"]), "orders", "order_no")
    assert values == ["ab-Cd"]


def test_id_numbers_upper_case_ascii_letters_only(column_frame) -> None:
    frame = column_frame("orders", "buyer_id_number", ["11010519491231002x", "ａb ß"])
    values, _ = _column(frame, "orders", "buyer_id_number")
    assert values == ["11010519491231002X", "AB ß"]


def test_enums_are_lower_cased_and_validated(column_frame) -> None:
    frame = column_frame("products", "status", ["ACTIVE ", "Revoked", "closed"])
    values, rejects = _column(frame, "products", "status")
    assert values == ["active", "revoked"]
    assert rejects.select("row", "column", "value").row(0) == (3, "status", "closed")
    assert rejects["message"][0] == "not one of active, revoked"


def test_digit_codes_need_ascii_digits_of_the_right_length(column_frame) -> None:
    frame = column_frame("products", "hs_code", ["３３０４９９００９９", "33049900", "33049900AB"])
    values, rejects = _column(frame, "products", "hs_code")
    assert values == ["3304990099"]
    assert rejects["row"].to_list() == [2, 3]
    assert rejects["message"].to_list() == ["not 10 ASCII digits"] * 2


def test_hs_prefix_length_range(column_frame) -> None:
    frame = column_frame("hs_lists", "hs_prefix", ["330", "3304", "3304990099", "33049900991"])
    values, rejects = _column(frame, "hs_lists", "hs_prefix")
    assert values == ["3304", "3304990099"]
    assert rejects["message"].to_list() == ["not 4 to 10 ASCII digits"] * 2


def test_roles_from_comma_separated_text(column_frame) -> None:
    frame = column_frame(
        "enterprises", "roles", ["ebp", "EBP, pay", "ebc,logistics,agent,", "ebp,foo"]
    )
    values, rejects = _column(frame, "enterprises", "roles")
    assert values == [1, 5, 2 | 8 | 16]
    assert rejects.select("row", "column", "value").row(0) == (4, "roles", "ebp,foo")
    assert rejects["message"][0].startswith("unknown role")


def test_roles_from_a_list_column(column_frame) -> None:
    frame = column_frame("enterprises", "roles", [0, 0, 0]).with_columns(
        pl.Series("roles", [["ebc", "agent"], ["pay", "pay"], []], dtype=pl.List(pl.String))
    )
    values, rejects = _column(frame, "enterprises", "roles")
    assert values == [18, 4]
    assert rejects.select("row", "message").row(0) == (3, "required value is missing")
    assert normalise_table(frame, "enterprises")[0].schema["roles"] == pl.UInt8


def test_integer_text_kinds(column_frame) -> None:
    frame = column_frame("order_items", "gnum", ["1", " 2 ", "3.0", "x", "1.5"])
    values, rejects = _column(frame, "order_items", "gnum")
    assert values == [1, 2, 3]
    assert rejects["row"].to_list() == [4, 5]
    assert rejects["message"].to_list() == ["not a whole number"] * 2


def test_rates_are_floats(column_frame) -> None:
    frame = column_frame("products", "vat_rate", ["0.13", " .09 ", "1", "-0.1", "13%"])
    values, rejects = _column(frame, "products", "vat_rate")
    assert values == [0.13, 0.09, 1.0]
    assert rejects["message"].to_list() == ["negative rate", "not a decimal number"]


def _reference_clean(value: str) -> str | None:
    # Python's own NFKC and white-space split; the alphabet below avoids the few characters
    # (\x1c-\x1f) that Python treats as white space but Unicode does not.
    collapsed = " ".join(unicodedata.normalize("NFKC", value).split())
    return collapsed or None


_ALPHABET = "aZ09 -\t\n\u3000\u00a0\u2003ＡＢ１２张三ｶﾀ①ﬁ"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(alphabet=_ALPHABET, max_size=12), min_size=1, max_size=8))
def test_text_cleaning_matches_python_reference(column_frame, values: list[str]) -> None:
    expected = [_reference_clean(v) for v in values]
    for column in (values, values[:1]):  # mixed column, and a single value (plain path)
        frame = column_frame("orders", "note", column)
        canonical, _ = normalise_table(frame, "orders", "orders.csv")
        assert canonical["note"].to_list() == expected[: len(column)]
