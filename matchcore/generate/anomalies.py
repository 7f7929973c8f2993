"""Which orders get which anomaly, and which harmless variants.

Every anomaly kind is named after the rule it makes fail (one kind per SPEC §3 rule). An order
gets at most one kind, so each injection can be designed to fail exactly its own rule; the
variants are spellings and near misses that must *pass* after normalisation.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ..rules import Rule

CLEAN = -1  # kind of an order without an injected anomaly

#: Rules that need the inventories table, and rules that need the HS lists.
INVENTORY_KINDS = frozenset({Rule.INVENTORY_MISSING, Rule.INVENTORY_MISMATCH})
HS_LIST_KINDS = frozenset({Rule.PRODUCT_NOT_ON_POSITIVE_LIST, Rule.PRODUCT_PROHIBITED})


class Variant(IntEnum):
    """Harmless differences applied to clean orders; none of them may fail a rule."""

    NONE = 0
    PAYER_NAME_PADDED = 1  # payer_name with ASCII / ideographic spaces around it
    PAYER_ID_FULL_WIDTH = 2  # payer_id_number in full-width digits (NFKC maps them back)
    PAYMENT_KEY_PADDED = 3  # payment order_no with surrounding white space
    CONSIGNEE_PADDED = 4  # waybill consignee with an ideographic space
    PHONE_FORMATTED = 5  # waybill phone written 138-1234-5678
    CURRENCY_DEFAULTED = 6  # order currency null, payment "142"
    PAY_REFERENCE_ABSENT = 7  # order names neither pay_code nor pay_transaction_id
    TAX_WITHIN_TOLERANCE = 8  # tax_total off by at most 0.10 CNY
    WINDOW_EXACTLY_24H = 9  # waybill exactly 24 h after the order
    LINE_TOTAL_ROUNDED = 10  # fractional qty, total_price rounded to the cent
    PHONE_ABSENT = 11  # waybill without consignee phone
    INVENTORY_ID_LOWER = 12  # inventory buyer_id_number padded, lower-case x
    PAY_CODE_PADDED = 13  # payment pay_code with a trailing space
    BUYER_ID_LOWER = 14  # order buyer_id_number padded, lower-case letters
    LIMIT_EXACTLY_SINGLE = 15  # goods + freight - discount exactly 5 000 CNY (not over)
    LEDGER_EXACTLY_FULL = 16  # the ledger leaves exactly this order's value (not over)
    DISCOUNT_NULL = 17  # discount left null (read as 0)
    BUYER_ID_TYPE_NULL = 18  # buyer_id_type left null (read as "1", resident ID)


def default_shares() -> dict[Rule, float]:
    """Equal shares for every rule kind."""
    return {rule: 1.0 for rule in Rule}


def enabled_shares(
    shares: dict[Rule, float] | None, *, inventories: bool, hs_lists: bool
) -> dict[Rule, float]:
    """Shares of the kinds that can fail with these tables (others set to 0)."""
    merged = default_shares()
    merged.update(shares or {})
    for rule in Rule:
        if (rule in INVENTORY_KINDS and not inventories) or (
            rule in HS_LIST_KINDS and not hs_lists
        ):
            merged[rule] = 0.0
    return merged


def kind_counts(orders: int, anomaly_rate: float, shares: dict[Rule, float]) -> dict[Rule, int]:
    """How many orders get each kind: `anomaly_rate` of `orders`, split by share
    (largest remainder, so the counts add up exactly)."""
    total = sum(v for v in shares.values() if v > 0)
    target = int(round(orders * min(max(anomaly_rate, 0.0), 1.0)))
    if total <= 0 or target == 0:
        return {rule: 0 for rule in Rule}
    exact = {rule: target * max(shares[rule], 0.0) / total for rule in Rule}
    counts = {rule: int(v) for rule, v in exact.items()}
    rest = target - sum(counts.values())
    by_remainder = sorted(Rule, key=lambda r: (-(exact[r] - counts[r]), r.value))
    for rule in by_remainder[:rest]:
        counts[rule] += 1
    return counts


def assign_kinds(rng: np.random.Generator, n: int, counts: dict[Rule, int]) -> np.ndarray:
    """Kind (Rule value, or CLEAN) of each of `n` base orders, at random positions."""
    kinds = np.full(n, CLEAN, dtype=np.int8)
    order = rng.permutation(n)
    start = 0
    for rule in Rule:
        take = min(counts[rule], n - start)
        kinds[order[start : start + take]] = rule.value
        start += take
    return kinds


def assign_variants(
    rng: np.random.Generator, kinds: np.ndarray, variant_rate: float, *, inventories: bool
) -> np.ndarray:
    """A Variant per order: `variant_rate` of the clean orders get one, uniformly."""
    variants = np.zeros(len(kinds), dtype=np.int8)
    pick = (kinds == CLEAN) & (rng.random(len(kinds)) < variant_rate)
    choices = [v.value for v in Variant if v != Variant.NONE]
    if not inventories:
        choices.remove(Variant.INVENTORY_ID_LOWER.value)
    variants[pick] = np.array(choices, dtype=np.int8)[rng.integers(0, len(choices), pick.sum())]
    return variants
