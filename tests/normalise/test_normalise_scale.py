"""Scale: normalisation is whole-column work, so a million text rows take seconds."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from matchcore.normalise import normalise_table

ROWS = 1_000_000


def _text_orders(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    units = pl.Series(rng.integers(0, 10**8, rows))
    money = (units // 10_000).cast(pl.String) + "." + (units % 10_000).cast(pl.String).str.zfill(4)
    seconds = pl.Series(rng.integers(1_700_000_000, 1_730_000_000, rows)) * 1_000_000
    index = pl.Series(np.arange(rows)).cast(pl.String)
    return pl.DataFrame(
        {
            "order_no": "O" + index,
            "ebp_code": "EBP1",
            "ebc_code": "EBC1",
            "goods_value": money,
            "freight": "10.00",
            "discount": money,
            "tax_total": "0",
            "actual_paid": money,
            "buyer_id_number": index.str.zfill(17) + "x",
            "buyer_name": "张" + index,
            "consignee": "李 " + index,
            "app_time": seconds.cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )


@pytest.mark.slow
def test_a_million_text_orders_normalise_in_seconds() -> None:
    raw = _text_orders(ROWS)
    started = time.perf_counter()
    canonical, rejects = normalise_table(raw, "orders", "orders.csv")
    elapsed = time.perf_counter() - started
    assert canonical.height == ROWS
    assert rejects.is_empty()
    assert canonical["buyer_id_number"][0] == "00000000000000000X"
    assert elapsed < 60  # a per-row Python loop would take minutes
