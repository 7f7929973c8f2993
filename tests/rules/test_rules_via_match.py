"""The rules end to end through `matchcore.match`: raw inputs are normalised before the
comparisons, and rejected input rows take no part."""

from __future__ import annotations

import polars as pl

import matchcore


def test_baseline_passes_through_match(kit):
    result = kit.Case().match()
    assert result.verdicts.select("order_no", "verdict").rows() == [("O1", "pass")]
    assert result.rejects.height == 0


def test_names_compare_after_normalisation(kit):
    # full-width letters, extra inner and outer spaces: NFKC + trimming make them equal
    case = kit.Case(
        orders=[kit.order(buyer_name="Zhang San", consignee="Zhang San")],
        payments=[kit.payment(payer_name=" Ｚｈａｎｇ   San ")],
        waybills=[kit.waybill(consignee="Zhang\u3000San")],
    )
    assert kit.reasons(case.match()) == []


def test_id_numbers_compare_with_letters_upper_cased(kit):
    lower = kit.BUYER_ID.lower()
    case = kit.Case(payments=[kit.payment(payer_id_number=lower)])
    assert kit.reasons(case.match()) == []


def test_codes_are_case_sensitive(kit):
    result = kit.Case(orders=[kit.order(pay_code="pay1")]).match()
    assert kit.reasons(result) == ["PAY_REFERENCE_MISMATCH"]


def test_rejected_order_row_gets_no_verdict_and_its_documents_are_orphans(kit):
    case = kit.Case()
    raw = case.raw_tables()
    raw["orders"] = raw["orders"].with_columns(pl.lit("-1").alias("freight"))
    result = matchcore.match(**raw, engine="reference")
    assert result.verdicts.height == 0
    assert result.rejects.height == 1
    assert sorted(result.orphans["document"].to_list()) == ["order_item", "payment", "waybill"]
