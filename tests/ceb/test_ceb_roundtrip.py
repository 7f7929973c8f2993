"""write_ceb -> read_ceb gives tables that normalise (and match) exactly like the originals."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from matchcore.api import match_sources
from matchcore.exceptions import InputError
from matchcore.generate import generate
from matchcore.io.ceb import read_ceb, write_ceb, write_receipts
from matchcore.normalise import normalise_table


@pytest.fixture(scope="module")
def generated() -> dict[str, pl.DataFrame]:
    return generate(2000, seed=11).tables


@pytest.fixture(scope="module")
def ceb_dir(generated: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ceb")
    write_ceb(generated, out, documents_per_message=150)
    return out


def _canonical(raw: pl.DataFrame, table: str) -> pl.DataFrame:
    frame, _ = normalise_table(raw, table)
    frame = frame.drop("_row")
    return frame.sort(frame.columns, nulls_last=True) if table == "order_items" else frame


def test_layout_of_written_directory(ceb_dir: Path, generated: dict[str, pl.DataFrame]) -> None:
    orders = generated["orders"].height
    assert len(list((ceb_dir / "orders").glob("CEB311_*.xml"))) == -(-orders // 150)
    for folder in ("payments", "waybills", "inventories"):
        assert any((ceb_dir / folder).glob("CEB*.xml"))
    for name in ("products", "enterprises", "hs_lists", "quota_ledger"):
        assert (ceb_dir / f"{name}.parquet").is_file()
    first = etree.parse(str(ceb_dir / "orders" / "CEB311_000001.xml")).getroot()
    assert first.tag == "{http://www.chinaport.gov.cn/ceb}CEB311Message"
    assert len(first.findall("{http://www.chinaport.gov.cn/ceb}Order")) == 150


def test_every_table_normalises_to_the_same_canonical_table(
    ceb_dir: Path, generated: dict[str, pl.DataFrame]
) -> None:
    data = read_ceb(ceb_dir)
    assert data.rejects.height == 0
    assert set(data.tables) == set(generated)
    for name, raw in generated.items():
        expected = _canonical(raw, name)
        assert expected.height > 0
        assert _canonical(data.tables[name], name).equals(expected), name


def test_match_on_ceb_gives_the_parquet_verdicts(
    ceb_dir: Path, generated: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    for name, frame in generated.items():
        frame.write_parquet(parquet_dir / f"{name}.parquet")
    from_parquet = match_sources({n: parquet_dir / f"{n}.parquet" for n in generated})
    from_ceb = match_sources(read_ceb(ceb_dir).sources())
    assert from_parquet.verdicts["verdict"].n_unique() == 3  # pass, review and reject occur
    assert from_ceb.verdicts.equals(from_parquet.verdicts)
    assert from_ceb.exceptions.equals(from_parquet.exceptions)
    assert from_ceb.ledger.equals(from_parquet.ledger)

    paths = write_receipts(from_ceb, tmp_path / "receipts", receipts_per_file=500)
    statuses: list[str | None] = []
    for path in paths:
        root = etree.parse(str(path)).getroot()
        statuses += [e.text for e in root.iter("{http://www.chinaport.gov.cn/ceb}returnStatus")]
    expected = from_ceb.verdicts["verdict"].replace_strict(
        {"pass": "2", "review": "120", "reject": "100"}
    )
    assert statuses == expected.to_list()


def _orders(n: int, **columns: list[object]) -> pl.DataFrame:
    """`n` orders with every required column filled (values are not checked by matching)."""
    base: dict[str, list[object]] = {
        "order_no": [f"N{i}" for i in range(n)],
        "ebp_code": ["EBP"] * n,
        "ebc_code": ["EBC"] * n,
        "goods_value": ["1.00"] * n,
        "freight": ["0"] * n,
        "tax_total": ["0"] * n,
        "actual_paid": ["1.00"] * n,
        "buyer_id_number": ["110105199003071239"] * n,
        "buyer_name": ["张三"] * n,
        "consignee": ["张三"] * n,
        "app_time": [datetime(2025, 1, 2, 3, 4, 5)] * n,
    }
    return pl.DataFrame({**base, **columns})


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(
                blacklist_categories=("Cs",),
                blacklist_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)],
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_text_survives_exactly(tmp_path_factory: pytest.TempPathFactory, notes: list[str]) -> None:
    out = tmp_path_factory.mktemp("text")
    write_ceb({"orders": _orders(len(notes), note=notes)}, out)
    read = read_ceb(out).tables["orders"]["note"].to_list()
    assert read == [note if note else None for note in notes]


def test_times_money_and_orphan_lines(tmp_path: Path) -> None:
    times = [datetime(2025, 1, 1, 0, 0, 0), datetime(2025, 6, 1, 12, 0, 0, 500)]
    orders = _orders(
        2, order_no=["A", "B"], goods_value=[0.1 + 0.2, 12.0], app_time=times
    ).with_columns(pl.col("app_time").dt.replace_time_zone("UTC"))
    lines = pl.DataFrame(
        {
            "order_no": ["A", "Z"],
            "ebp_code": ["EBP", "EBP"],
            "gnum": [1, 1],
            "item_no": ["S", "S"],
            "qty": [1, 2],
            "price": [1, 1],
            "total_price": [1, 2],
        }
    )
    written = write_ceb({"orders": orders, "order_items": lines}, tmp_path)
    assert written == {"orders": 1, "orphan_order_items.parquet": 1}
    data = read_ceb(tmp_path)
    read = data.tables["orders"]
    assert read["goods_value"].to_list() == ["0.3", "12.0"]
    # UTC midnight is 08:00 in China; sub-second times keep their microseconds.
    assert read["app_time"].to_list() == ["2025-01-01 08:00:00", "2025-06-01 20:00:00.000500"]
    items = data.tables["order_items"]
    assert items.select("order_no", "gnum").rows() == [("A", "1"), ("Z", "1")]


def test_characters_xml_cannot_hold_are_dropped(tmp_path: Path) -> None:
    write_ceb({"orders": _orders(1, note=["a\x01b\uffffc <&> d\r"])}, tmp_path)
    assert read_ceb(tmp_path).tables["orders"]["note"].to_list() == ["abc <&> d\r"]


#: Asia/Shanghai kept local mean time (+08:05:43) until 1901.
_MEAN_TIME = timedelta(hours=8, minutes=5, seconds=43)
_EPOCH = datetime(1970, 1, 1)


def _utc_times(*micros: int, unit: Literal["us", "ms"] = "us") -> pl.Series:
    return pl.Series("app_time", micros, dtype=pl.Int64).cast(pl.Datetime(unit, "UTC"))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


#: The first and last instants of China years 1 and 9999, in UTC microseconds.
_FIRST = _micros(datetime(1, 1, 1)) - _MEAN_TIME // timedelta(microseconds=1)
_LAST = _micros(datetime(9999, 12, 31, 15, 59, 59, 999_999))


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (_utc_times(_FIRST, _LAST), ["0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"]),
        (
            pl.Series([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999_999)]),
            ["0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"],
        ),
        (
            pl.Series([date(1, 1, 1), date(9999, 12, 31)]),
            ["0001-01-01 00:00:00", "9999-12-31 00:00:00"],
        ),
        (
            pl.Series(["2025-01-01T00:00:00+08:00", "2025-01-01T00:00:00Z"]),
            ["2025-01-01 00:00:00", "2025-01-01 08:00:00"],
        ),
    ],
    ids=["zoned", "naive", "date", "text-with-offset"],
)
def test_times_of_years_1_to_9999_are_written_in_china_time(
    tmp_path: Path, times: pl.Series, expected: list[str]
) -> None:
    write_ceb({"orders": _orders(2, app_time=times)}, tmp_path)
    assert read_ceb(tmp_path).tables["orders"]["app_time"].to_list() == expected


_FAR_DAYS = 300_000 * 366  # a date near year 300,000 (chrono panics on it)


@pytest.mark.parametrize(
    "times",
    [
        _utc_times(_FIRST, _FIRST - 1),  # 0000-12-31 23:59:59.999999 in China
        _utc_times(_LAST, _LAST + 1),  # 10000-01-01 00:00:00 in China
        _utc_times(0, 2**63 - 1),
        _utc_times(0, -(2**63)),
        _utc_times(0, 2**62, unit="ms"),  # beyond int64 microseconds
        pl.Series([0, _micros(datetime(9999, 12, 31, 23, 59, 59, 999_999)) + 1]).cast(
            pl.Datetime("us")
        ),
        pl.Series([0, -_FAR_DAYS], dtype=pl.Int32).cast(pl.Date),
        pl.Series([0, _FAR_DAYS], dtype=pl.Int32).cast(pl.Date),
        pl.Series(["2025-01-02T00:00:00", "+10000-01-01T00:00:00"]),
    ],
    ids=[
        "zoned-0",
        "zoned-10000",
        "int64-max",
        "int64-min",
        "ms",
        "naive",
        "date-",
        "date+",
        "text",
    ],
)
def test_times_a_ceb_time_cannot_hold_are_refused_by_row_and_column(
    tmp_path: Path, times: pl.Series
) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"^table orders, row 2, column app_time: a CEB time "):
        write_ceb({"orders": _orders(2, app_time=times)}, out)
    assert not out.exists()  # refused before anything is written


@pytest.mark.parametrize(
    ("texts", "row"),
    [
        (["2025-01-02T00:00:00+08:00", "not a time"], 2),  # the format Polars infers fails it
        (["20250102000000", "20250102000000"], 1),  # no format Polars knows fits at all
    ],
    ids=["one-unread", "none-read"],
)
def test_text_times_that_are_not_times_are_refused_by_row_and_column(
    tmp_path: Path, texts: list[str], row: int
) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match=rf"^table orders, row {row}, column app_time: not a time"):
        write_ceb({"orders": _orders(2, app_time=texts)}, out)
    assert not out.exists()


def test_blank_text_times_leave_the_element_out(tmp_path: Path) -> None:
    write_ceb({"orders": _orders(2, app_time=["2025-01-02T03:04:05+08:00", "  "])}, tmp_path)
    read = read_ceb(tmp_path)
    assert read.tables["orders"]["order_no"].to_list() == ["N0"]
    missing = read.rejects.filter(pl.col("column") == "appTime")  # a required element
    assert missing.select("row", "value").rows() == [(2, None)]
