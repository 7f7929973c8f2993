"""appType 1/2/3: new documents stay, the latest version wins after a modify, deletes drop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.io.ceb import read_ceb
from matchcore.io.ceb.reader import resolve_versions


def _orders(ceb: SimpleNamespace, *versions: dict[str, str]) -> bytes:
    return ceb.message("".join(ceb.order_document(**v) for v in versions))


def test_modify_with_later_time_replaces_the_original(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "1", "appTime": "20250401100000", "goodsValue": "100.00"},
            {"appType": "2", "appTime": "20250401110000", "goodsValue": "90.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["90.00"]
    assert data.tables["order_items"].height == 1  # the lines of the kept version only
    assert (data.notes["orders.superseded"], data.notes["orders.deleted"]) == (1, 0)


def test_latest_app_time_wins_whatever_the_input_order(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "2", "appTime": "20250401120000", "goodsValue": "80.00"},
            {"appType": "1", "appTime": "20250401100000", "goodsValue": "100.00"},
            {"appType": "2", "appTime": "20250401110000", "goodsValue": "90.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["80.00"]
    assert data.notes["orders.superseded"] == 2


def test_equal_times_are_decided_by_input_order(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "2", "appTime": "20250401100000", "goodsValue": "1.00"},
            {"appType": "2", "appTime": "20250401100000", "goodsValue": "2.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["2.00"]


def test_delete_drops_the_document_and_is_counted(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "1", "appTime": "20250401100000"},
            {"appType": "3", "appTime": "20250401110000"},
            {"appType": "1", "appTime": "20250401100000", "orderNo": "T0002"},
        )
    )
    assert data.tables["orders"]["order_no"].to_list() == ["T0002"]
    assert data.tables["order_items"]["order_no"].to_list() == ["T0002"]
    assert data.notes["orders.deleted"] == 1


def test_new_after_a_delete_restores_the_document(ceb: SimpleNamespace) -> None:
    data = read_ceb(
        _orders(
            ceb,
            {"appType": "3", "appTime": "20250401100000"},
            {"appType": "1", "appTime": "20250401110000", "goodsValue": "70.00"},
        )
    )
    assert data.tables["orders"]["goods_value"].to_list() == ["70.00"]
    assert data.notes["orders.deleted"] == 0


def test_repeated_new_declarations_are_all_kept(ceb: SimpleNamespace) -> None:
    data = read_ceb(_orders(ceb, {"appType": "1"}, {"appType": "1"}))
    # Duplicate declarations are what ORDER_DUPLICATE reports, so both copies stay.
    assert data.tables["orders"]["order_no"].to_list() == ["T0001", "T0001"]
    assert data.notes["orders.superseded"] == 0


def test_versions_across_files_and_types(samples: Path) -> None:
    data = read_ceb(samples)
    orders = data.tables["orders"]
    assert orders["order_no"].to_list() == [
        "SO20250317000001",
        "SO20250315000001",
        "SO20250316000001",
        "SO20250316000002",
        "SO20250316000003",
    ]
    modified = orders.filter(orders["order_no"] == "SO20250315000001").row(0, named=True)
    assert (modified["goods_value"], modified["actual_paid"]) == ("198.00", "226.92")
    lines = data.tables["order_items"].filter(
        data.tables["order_items"]["order_no"] == "SO20250315000001"
    )
    assert lines["item_no"].to_list() == ["SKU-0001"]
    assert (data.notes["orders.deleted"], data.notes["orders.superseded"]) == (1, 2)
    assert data.notes["orders.documents"] == 8


def test_payment_versions_use_the_payment_key(ceb: SimpleNamespace) -> None:
    docs = ceb.payment_document(appType="1", amountPaid="10.00") + ceb.payment_document(
        appType="2", appTime="20250401110000", amountPaid="12.00"
    )
    data = read_ceb(ceb.message(docs, root="CEB411Message"))
    assert data.tables["payments"]["amount_paid"].to_list() == ["12.00"]


def _expected_versions(versions: list[tuple[str, str, int]]) -> tuple[list[int], int]:
    """Positions kept and keys deleted, by the rule stated plainly: per key, only-new keys keep
    all copies; otherwise the latest (appTime, position) wins unless it is a delete."""
    kept: list[int] = []
    deleted = 0
    for key in {k for k, _, _ in versions}:
        mine = [(t, i, a) for i, (k, a, t) in enumerate(versions) if k == key]
        if all(a == "1" for _, _, a in mine):
            kept += [i for _, i, _ in mine]
            continue
        _, last, app_type = max(mine)
        if app_type == "3":
            deleted += 1
        else:
            kept.append(last)
    return sorted(kept), deleted


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["K1", "K2", "K3"]), st.sampled_from(["1", "2", "3"]), st.integers(0, 3)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_resolve_versions_matches_the_rule(versions: list[tuple[str, str, int]]) -> None:
    frame = pl.DataFrame(
        {
            "k": [k for k, _, _ in versions],
            "appType": [a for _, a, _ in versions],
            "appTime": [f"2025040110000{t}" for _, _, t in versions],
            "_seq": list(range(len(versions))),
        }
    )
    kept, deleted, superseded = resolve_versions(frame, ("k",))
    expected_kept, expected_deleted = _expected_versions(versions)
    assert kept["_seq"].to_list() == expected_kept
    assert (deleted, superseded) == (
        expected_deleted,
        len(versions) - len(expected_kept) - expected_deleted,
    )
