"""The tax of SPEC §3.2 and the annual walk of SPEC §3.1 on hand-worked examples."""

from __future__ import annotations

import numpy as np
import polars as pl

from matchcore.generate.truth import annual_walk, order_tax, reasons_of


def test_tax_vat_only_with_freight() -> None:
    # 100.00 CNY goods + 10.00 freight at 13 % VAT: 0.7 * 0.13 * 110 = 10.01 CNY
    tax = order_tax(
        np.array([0]),
        np.array([1_000_000]),
        np.array([100_000]),
        np.array([0.13]),
        np.array([0.0]),
        1,
    )
    assert tax.tolist() == [100_100]


def test_tax_with_consumption_tax_rounds_half_up_to_cent() -> None:
    # 100.00 CNY at 15 % consumption tax: ct = 17.6470588, vat = 15.2941176,
    # 0.7 * 32.9411765 = 23.0588 -> 23.06 CNY
    tax = order_tax(
        np.array([0]), np.array([1_000_000]), np.array([0]), np.array([0.13]), np.array([0.15]), 1
    )
    assert tax.tolist() == [230_600]


def test_tax_shares_freight_by_line_value() -> None:
    # lines 30.00 and 10.00, freight 4.00: dutiable 33.00 and 11.00, VAT 9 %
    # line taxes 0.7*2.97 = 2.079 and 0.7*0.99 = 0.693 -> 20790 + 6930 = 27720 -> 2.77 CNY
    tax = order_tax(
        np.array([0, 0]),
        np.array([300_000, 100_000]),
        np.array([40_000]),
        np.array([0.09, 0.09]),
        np.array([0.0, 0.0]),
        1,
    )
    assert tax.tolist() == [27_700]


def test_annual_walk_skips_rejected_and_adds_nothing_when_over() -> None:
    # buyer A starts at 50 of 100: 30 ok (80), 30 over, 10 ok (90), 50 over
    # buyer B: a rejected 90 is skipped, then 20 and 20 pass
    buyer = np.array(["B", "A", "A", "B", "A", "A", "B"])
    time = np.array([1, 4, 2, 2, 3, 1, 3])
    value = np.array([90, 50, 30, 20, 10, 30, 20])
    rejected = np.array([True, False, False, False, False, False, False])
    start = np.array([0, 50, 50, 0, 50, 50, 0])
    failed = annual_walk(
        buyer, np.full(7, 2025), [time, np.zeros(7), np.zeros(7)], value, rejected, start, 100
    )
    # A in time order: t1=30 ok, t2=30 over, t3=10 ok, t4=50 over
    assert failed.tolist() == [False, True, True, False, False, False, False]


def test_annual_walk_orders_ties_by_platform_and_number() -> None:
    buyer = np.array(["A", "A"])
    failed = annual_walk(
        buyer,
        np.array([2025, 2025]),
        [np.array([5, 5]), pl.Series(["P2", "P1"]), pl.Series(["1", "9"])],
        np.array([60, 60]),
        np.array([False, False]),
        np.array([0, 0]),
        100,
    )
    assert failed.tolist() == [True, False]  # P1 comes first and fits


def test_reasons_in_rule_order() -> None:
    masks = np.array([0, (1 << 19) | (1 << 0), 1 << 28], dtype=np.uint64)
    assert reasons_of(masks).to_list() == [
        [],
        ["ORDER_DUPLICATE", "ANNUAL_LIMIT_EXCEEDED"],
        ["INVENTORY_MISMATCH"],
    ]
