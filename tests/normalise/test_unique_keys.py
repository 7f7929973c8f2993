"""Unique-key tables keep the first row per key; later copies are rejects (SPEC §2)."""

from __future__ import annotations

from matchcore.normalise import normalise_table


def test_duplicate_order_line_goes_to_rejects(make_raw) -> None:
    frame = make_raw(
        "order_items",
        {"gnum": "1", "item_no": "first"},
        {"gnum": "2", "item_no": "other"},
        {"gnum": " 1", "item_no": "second"},
    )
    canonical, rejects = normalise_table(frame, "order_items", "items.csv")
    assert canonical["item_no"].to_list() == ["first", "other"]
    assert rejects.select("table", "file", "row", "column", "value").row(0) == (
        "order_items",
        "items.csv",
        3,
        "ebp_code,order_no,gnum",
        "EBP1|O1|1",
    )
    message = rejects["message"][0]
    assert "ebp_code, order_no, gnum" in message
    assert "row 1" in message


def test_keys_compare_after_normalisation(make_raw) -> None:
    frame = make_raw("enterprises", {"code": "EBP1"}, {"code": "ＥＢＰ１ "}, {"code": "ebp1"})
    canonical, rejects = normalise_table(frame, "enterprises", "enterprises.csv")
    assert canonical["code"].to_list() == ["EBP1", "ebp1"]
    assert rejects["row"].to_list() == [2]


def test_a_rejected_first_copy_does_not_block_the_next(make_raw) -> None:
    frame = make_raw("products", {"vat_rate": "bad"}, {"vat_rate": "0.13"})
    canonical, rejects = normalise_table(frame, "products", "products.csv")
    assert canonical["_row"].to_list() == [2]
    assert rejects["message"].to_list() == ["not a decimal number"]


def test_orders_are_not_deduplicated(make_raw) -> None:
    canonical, rejects = normalise_table(make_raw("orders", {}, {}), "orders", "orders.csv")
    assert canonical["_row"].to_list() == [1, 2]
    assert rejects.is_empty()
