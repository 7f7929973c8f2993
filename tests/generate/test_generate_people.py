"""Synthetic people: resident IDs follow GB 11643, names and phones look right."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from matchcore.generate import people

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def valid_by_hand(text: str, not_after: dt.date = dt.date(2025, 1, 1)) -> bool:
    """GB 11643 written out plainly, one ID at a time (independent of the generator)."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    check = "10X98765432"[sum(int(c) * w for c, w in zip(text[:17], WEIGHTS, strict=True)) % 11]
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    return check == text[17] and born <= not_after


def test_known_id_checksum() -> None:
    # 11010519491231002X is the standard's published example
    ids = pl.Series(["11010519491231002X", "110105194912310021"])
    assert people.is_valid_resident_id(ids).tolist() == [True, False]


def test_random_resident_ids_are_valid() -> None:
    ids = people.resident_ids(np.random.default_rng(1), 500)
    assert all(valid_by_hand(t) for t in ids.to_list())
    assert people.is_valid_resident_id(ids).all()


def test_unique_resident_ids_are_valid_and_distinct() -> None:
    ids = people.unique_resident_ids(np.arange(50_000), shift=12345)
    assert ids.n_unique() == 50_000
    sample = ids.gather(np.arange(0, 50_000, 97)).to_list()
    assert all(valid_by_hand(t) for t in sample)


def test_invalid_resident_ids_fail() -> None:
    ids = people.invalid_resident_ids(np.random.default_rng(2), 400, 2025).to_list()
    assert not any(valid_by_hand(t, dt.date(2025, 12, 31)) for t in ids)
    assert not people.is_valid_resident_id(pl.Series(ids), np.full(400, 20251231)).any()


def test_real_dates() -> None:
    ymd = np.array([20240229, 20230229, 20001231, 20001301, 19000229, 20000229, 20250431])
    assert people.real_dates(ymd).tolist() == [True, False, True, False, False, True, False]


def test_names_phones_addresses() -> None:
    rng = np.random.default_rng(3)
    names = people.chinese_names(rng, 200)
    assert names.str.len_chars().is_between(2, 4).all()
    phones = people.mobiles(rng, 200)
    assert phones.str.contains(r"^1[3-9]\d{9}$").all()
    assert people.addresses(rng, 50).str.contains("号").all()
    assert people.unique_passport_numbers(np.arange(1000), 7).n_unique() == 1000
