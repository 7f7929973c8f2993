"""Inventory rules: on only with an inventories table; missing and mismatched inventories."""

from __future__ import annotations


def test_inventory_rules_are_off_without_an_inventories_table(kit):
    assert kit.reasons(kit.Case().run()) == []


def test_matching_inventory_passes(kit):
    assert kit.reasons(kit.Case(inventories=[kit.inventory()]).run()) == []


def test_order_without_its_inventory_fails(kit):
    other = kit.inventory(order_no="O7")
    result = kit.Case(inventories=[other]).run()
    assert kit.reasons(result) == ["INVENTORY_MISSING"]
    row = kit.exception_rows(result, "INVENTORY_MISSING")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("inventory", "1", "0")


def test_inventory_of_another_enterprise_fails(kit):
    result = kit.Case(inventories=[kit.inventory(ebc_code="EBC2")]).run()
    assert kit.reasons(result) == ["INVENTORY_MISMATCH"]
    row = kit.exception_rows(result, "INVENTORY_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("ebc_code", "EBC1", "EBC2")


def test_inventory_of_another_buyer_fails_with_masked_numbers(kit):
    other = kit.valid_resident_id("11010519800101001")
    result = kit.Case(inventories=[kit.inventory(buyer_id_number=other)]).run()
    row = kit.exception_rows(result, "INVENTORY_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == (
        "buyer_id_number",
        "*" * 14 + "002X",
        "*" * 14 + other[-4:],
    )


def test_inventory_naming_another_waybill_fails(kit):
    result = kit.Case(inventories=[kit.inventory(logistics_no="W2")]).run()
    assert kit.reasons(result) == ["INVENTORY_MISMATCH"]
    row = kit.exception_rows(result, "INVENTORY_MISMATCH")[0]
    assert (row["field"], row["expected"], row["actual"]) == ("logistics_no", "W1", "W2")


def test_waybill_comparison_needs_the_single_waybill(kit):
    case = kit.Case(inventories=[kit.inventory(logistics_code="LOG2")], waybills=[])
    assert kit.reasons(case.run()) == ["WAYBILL_MISSING"]
