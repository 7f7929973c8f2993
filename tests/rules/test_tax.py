"""TAX_MISMATCH and the computed tax of SPEC §3.2, with hand-computed examples."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.engine.reference.lines import computed_tax
from matchcore.rules import Parameters, RuleSettings


def computed(result) -> list[Decimal | None]:
    return result.verdicts["computed_tax"].to_list()


def test_baseline_tax_by_hand(kit):
    # one line 100.00 at VAT 13 %, freight 10.00: d = 110.00, vat = 14.30, × 0.7 = 10.01
    assert computed(kit.Case().run()) == [Decimal("10.01")]


def test_tax_with_consumption_tax_and_freight_shared_between_lines(kit):
    # lines 60.00 (c 15 %, VAT 13 %) and 40.00 (VAT 13 %), freight 10.00 shared 6.00 / 4.00:
    # line 1: d = 660000, ct = 660000 × 0.15 / 0.85 = 116470.588..., vat = 100941.176...,
    #         t = round(0.7 × 217411.764...) = 152188
    # line 2: d = 440000, vat = 57200, t = 40040;  Σ = 192228 -> 192200 (19.22 CNY)
    items = [
        kit.item(item_no="WINE", qty=10_000, price=kit.cny("60"), total_price=kit.cny("60")),
        kit.item(gnum=2, qty=10_000, price=kit.cny("40"), total_price=kit.cny("40")),
    ]
    products = [kit.product(), kit.product(item_no="WINE", consumption_tax_rate=0.15)]
    case = kit.Case(
        items=items,
        products=products,
        orders=[kit.order(tax_total=kit.cny("19.22"), actual_paid=kit.cny("129.22"))],
        payments=[kit.payment(amount_paid=kit.cny("129.22"))],
    )
    result = case.run()
    assert computed(result) == [Decimal("19.22")]
    assert kit.reasons(result) == []


def tiny_lines(kit, *prices: int):
    """Lines of the given ten-thousandths at VAT 50 %, no freight, tax discount 1."""
    items = [kit.item(gnum=i + 1, qty=10_000, price=p, total_price=p) for i, p in enumerate(prices)]
    case = kit.Case(
        items=items,
        products=[kit.product(vat_rate=0.5)],
        orders=[kit.order(freight=0, goods_value=sum(prices))],
    )
    return case.run(RuleSettings.from_overrides(tax_discount=1.0))


def test_line_tax_rounds_half_to_even(kit):
    # two lines of 0.0049: t = round(24.5) = 24 each, Σ = 48 -> 0.00 (half-up per line: 50 -> 0.01)
    assert computed(tiny_lines(kit, 49, 49)) == [Decimal("0")]


def test_total_rounds_half_up_to_the_cent(kit):
    # 0.0101: t = round(50.5) = 50 -> 50 ten-thousandths is half a cent, up to 0.01
    assert computed(tiny_lines(kit, 101)) == [Decimal("0.01")]
    # 0.0097: t = round(48.5) = 48 -> 0.00
    assert computed(tiny_lines(kit, 97)) == [Decimal("0")]


def test_tax_off_by_exactly_the_tolerance_passes(kit):
    case = kit.Case(orders=[kit.order(tax_total=kit.cny("10.11"))])
    assert "TAX_MISMATCH" not in kit.reasons(case.run())


def test_tax_one_unit_over_the_tolerance_fails(kit):
    case = kit.Case(orders=[kit.order(tax_total=kit.cny("9.9099"))])
    result = case.run()
    assert "TAX_MISMATCH" in kit.reasons(result)
    row = kit.exception_rows(result, "TAX_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("tax_total", "10.01", "9.9099")


def test_tax_skipped_when_a_consumption_rate_is_one_or_more(kit):
    case = kit.Case(products=[kit.product(consumption_tax_rate=1.0)])
    result = case.run()
    assert computed(result) == [None]
    assert kit.reasons(result) == []


def test_tax_with_lines_summing_to_zero_has_no_freight_share(kit):
    # P = 0: s = 0, so every line is taxed on 0 and the tax is 0.00 whatever the freight
    case = kit.Case(items=[kit.item(price=0, total_price=0)])
    result = case.run(kit.severities(GOODS_VALUE_MISMATCH="off"))
    assert computed(result) == [Decimal("0")]
    assert "TAX_MISMATCH" in kit.reasons(result)


def plain_tax(lines: list[tuple[int, float, float]], freight: int, discount: int) -> int:
    """SPEC §3.2 as written, in Python floats (IEEE double, like every engine)."""
    total = sum(p for p, _, _ in lines)
    shipping = float(freight - discount)
    taxes = 0
    for price, c, v in lines:
        share = 0.0 if total == 0 else shipping * float(price) / float(total)
        dutiable = float(price) + share
        consumption = dutiable * c / (1.0 - c)
        vat = (dutiable + consumption) * v
        taxes += round(0.7 * (consumption + vat))
    return (taxes + 50) // 100 * 100


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.3, 0.56]),
            st.sampled_from([0.0, 0.06, 0.09, 0.13, 0.17]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
)
def test_computed_tax_equals_the_plain_formula(lines, freight, discount):
    frame = pl.DataFrame(
        {
            "order_row": [0] * len(lines),
            "total_price": [p for p, _, _ in lines],
            "items_total": [sum(p for p, _, _ in lines)] * len(lines),
            "freight": [freight] * len(lines),
            "discount": [discount] * len(lines),
            "consumption_tax_rate": [c for _, c, _ in lines],
            "vat_rate": [v for _, _, v in lines],
            "not_filed_variant": pl.Series([None] * len(lines), dtype=pl.UInt8),
        }
    )
    result = computed_tax(frame, Parameters())
    assert result["computed_tax"].to_list() == [plain_tax(lines, freight, discount)]
