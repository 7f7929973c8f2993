"""The benchmark runner's pure parts: sizes, repetitions, output comparison, peak-RSS reading
and the target verdict lines of RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa

from benchmarks import compare
from benchmarks.compare import SizeResult


def test_sizes_parse_and_print() -> None:
    assert compare.parse_size("10M") == 10_000_000
    assert compare.parse_size("50k") == 50_000
    assert compare.parse_size("1_200") == 1_200
    assert compare.size_label(2_000_000) == "2M"
    assert compare.size_label(20_000) == "20k"
    assert compare.size_label(1_234) == "1234"


def test_repeat_at_overrides_one_size() -> None:
    args = compare.parse_args(["--sizes", "1M,10M", "--repeat", "3", "--repeat-at", "10M=1"])
    assert compare.repetitions(args) == {1_000_000: 3, 10_000_000: 1}


def test_quick_run_writes_outside_the_repository_results() -> None:
    args = compare.parse_args(["--quick"])
    assert args.sizes == "20k,50k" and args.repeat == 2
    assert Path(args.results) == compare.CACHE / "quick"


def write_results(path: Path, masks: list[int], taxes: list[int | None]) -> Path:
    pl.DataFrame(
        {
            "reason_mask": pl.Series(masks, dtype=pl.UInt64),
            "computed_tax": pl.Series(taxes, dtype=pl.Int64),
            "limit_value": pl.Series([100] * len(masks), dtype=pl.Int64),
        }
    ).write_ipc(path)
    return path


def test_differing_counts_rows_including_nulls(tmp_path: Path) -> None:
    expected = write_results(tmp_path / "a.arrow", [0, 1, 2], [100, None, 300])
    same = write_results(tmp_path / "b.arrow", [0, 1, 2], [100, None, 300])
    other = write_results(tmp_path / "c.arrow", [0, 3, 2], [100, 200, 300])
    assert compare.differing(expected, same) == 0
    assert compare.differing(expected, other) == 1  # row 1 differs in mask and in tax


def test_peak_rss_is_read_and_reset() -> None:
    rss = compare.proc_status_kib("VmRSS")
    assert compare.proc_status_kib("VmHWM") >= rss > 0
    block = b"\x01" * (96 << 20)  # touched pages: RSS really grows by 96 MiB
    peak_with_block = compare.proc_status_kib("VmHWM")
    assert peak_with_block >= rss + (64 << 10)
    del block
    assert compare.reset_peak_rss(), "this Linux does not allow resetting VmHWM"
    assert compare.proc_status_kib("VmHWM") < peak_with_block - (64 << 10)


def sample(seconds: float, peak_gib: float = 1.0) -> dict[str, float]:
    kib = peak_gib * 2**20
    return {"seconds": seconds, "peak_rss_kib": kib, "rss_before_kib": kib / 2}


def size_result(orders: int, kernel: float, reference: float, duckdb: float) -> SizeResult:
    result = SizeResult(orders, 2**30, {"orders": orders}, 1.0, 3)
    result.samples = {
        "kernel": [sample(kernel), sample(kernel * 1.1), sample(kernel * 0.9)],
        "reference": [sample(reference)],
        "duckdb": [sample(duckdb)],
    }
    result.agree = {"kernel": True, "reference": True, "duckdb": True}
    result.e2e = [{"seconds": kernel * 3, "phases": {"read": 1.0}}]
    return result


def test_verdict_lines_say_met_missed_and_by_how_much() -> None:
    results = [size_result(1_000_000, 1.0, 6.0, 2.0), size_result(10_000_000, 10.0, 60.0, 20.0)]
    lines = "\n".join(compare.verdict_lines(results))
    assert "kernel vs Polars reference at 10M: **met** (6.00x" in lines
    assert (
        "kernel vs DuckDB at 10M: **missed** (2.00x against >= 3x; off by a factor of 1.50)"
        in lines
    )
    assert "end to end / in-memory kernel at 10M: **missed** (3.00x" in lines
    assert "growth 1M -> 10M, kernel: time x10.00 for x10 orders" in lines


def test_disagreeing_engine_times_are_not_reported() -> None:
    result = size_result(1_000_000, 1.0, 6.0, 2.0)
    result.agree["duckdb"] = False
    result.differing_rows["duckdb"] = 7
    result.truth_rows["duckdb"] = 5
    table = "\n".join(compare.timing_table([result]))
    assert "| 1M | duckdb | not reported (outputs differ)" in table
    assert "NO (7 rows differ from reference, 5 from the truth)" in table
    kernel_row = next(line for line in table.splitlines() if "| kernel |" in line)
    assert "6.00x" in kernel_row and "| 1.000 |" in kernel_row


def test_outputs_are_checked_against_duckdb_when_the_reference_failed(tmp_path: Path) -> None:
    result = size_result(1_000, 1.0, 6.0, 2.0)
    result.agree = {}
    del result.samples["reference"]
    result.failures["reference"] = "exit code -9"
    write_results(tmp_path / "1000-duckdb.arrow", [0, 1], [100, 200])
    write_results(tmp_path / "1000-kernel.arrow", [0, 5], [100, 200])
    compare.check_agreement(result, tmp_path, list(compare.ENGINES))
    assert result.oracle == "duckdb"
    assert result.agree == {"duckdb": True, "kernel": False}
    assert result.differing_rows["kernel"] == 1
    assert "compared with duckdb and the ground truth: the reference engine failed" in "\n".join(
        compare.timing_table([result])
    )
    del result.failures["reference"]
    assert "the reference engine was not run" in "\n".join(compare.timing_table([result]))


def test_canonical_cache_round_trips_one_chunk_per_column(tmp_path: Path) -> None:
    from matchcore.generate import generate
    from matchcore.normalise import load_tables

    data = tmp_path / "data"
    generate(300, seed=3, out=data)
    meta = compare.ensure_canonical(data)
    tables, arrow_bytes = compare.read_canonical(data / "canonical")
    expected = load_tables(data).tables
    for name in compare.TABLE_NAMES:
        frame, want = getattr(tables, name), getattr(expected, name)
        assert (frame is None) == (want is None), name
        if frame is not None:
            assert frame.equals(want), name
            assert frame.n_chunks() == 1, name
            texts = [c for c, dtype in frame.schema.items() if dtype == pl.String]
            stored = pa.ipc.open_file(pa.memory_map(str(data / "canonical" / f"{name}.arrow")))
            assert {str(stored.schema.field(c).type) for c in texts} <= {"string_view"}, name
            assert meta["rows"][name] == want.height
    assert arrow_bytes == meta["arrow_bytes"]
    # Every buffer counts, string views included: Polars' estimate leaves most of them out.
    assert arrow_bytes > sum(getattr(tables, name).estimated_size() for name in meta["rows"])


def test_canonical_cache_made_by_other_normaliser_code_is_made_again(tmp_path: Path) -> None:
    from matchcore.generate import generate

    data = tmp_path / "data"
    generate(50, seed=3, out=data)
    meta_path = data / "canonical" / "meta.json"
    first = compare.ensure_canonical(data)
    assert first["code"] == compare.canonical_code_digest()
    stale = dict(first, code="other code", rows={"orders": -1})
    meta_path.write_text(json.dumps(stale))
    assert compare.ensure_canonical(data)["rows"] == first["rows"]  # normalised again
    assert json.loads(meta_path.read_text())["code"] == first["code"]


def test_outputs_are_checked_against_the_ground_truth(tmp_path: Path) -> None:
    from matchcore.generate import generate
    from matchcore.normalise import load_tables
    from matchcore.rules import RuleSettings

    data = tmp_path / "data-500"
    generate(500, seed=5, out=data)
    output = compare.make_engine("kernel").run(load_tables(data).tables, RuleSettings())
    orders = compare.order_results("kernel", output)
    result = size_result(500, 1.0, 6.0, 2.0)
    result.agree = {}
    for engine in result.samples:
        orders.write_ipc(tmp_path / f"500-{engine}.arrow")
    compare.check_truth(result, data, tmp_path)
    assert set(result.truth_rows.values()) == {0}
    assert set(result.agree.values()) == {True}

    masks = orders["reason_mask"].to_list()
    wrong = orders.with_columns(pl.Series("reason_mask", [m ^ 1 for m in masks[:3]] + masks[3:]))
    wrong.write_ipc(tmp_path / "500-duckdb.arrow")
    compare.check_truth(result, data, tmp_path)
    assert result.truth_rows["duckdb"] == 3 and not result.agree["duckdb"]
    assert result.agree["kernel"]


def test_a_target_not_measurable_at_the_largest_size_says_why_and_falls_back() -> None:
    small, large = size_result(5_000_000, 1.0, 6.0, 2.0), size_result(10_000_000, 2.0, 9.0, 8.0)
    del large.samples["reference"]
    large.failures["reference"] = "exit code -9"
    large.e2e = [{"error": "exit code -9: killed"}]
    lines = "\n".join(compare.verdict_lines([small, large]))
    assert "kernel vs Polars reference: not measured at 10M (reference: exit code -9)." in lines
    assert (
        "kernel vs Polars reference at 5M (the largest size where it was measured): **met** "
        "(6.00x" in lines
    )
    assert "kernel vs DuckDB at 10M: **met** (4.00x" in lines
    assert "end to end / in-memory kernel: not measured at 10M (end to end: exit code -9" in lines
    assert "in-memory kernel at 5M (the largest size where it was measured): **missed** (3.00x" in (
        lines
    )


def test_a_rerun_keeps_the_notes_written_below_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    assert compare.with_kept_notes("# new tables\n", path) == "# new tables\n"  # no report yet
    notes = f"{compare.NOTES_MARKER}\n\n## Streaming\n\nmeasured by hand\n"
    path.write_text(f"# old tables\n\n{notes}")
    assert compare.with_kept_notes("# new tables\n", path) == f"# new tables\n\n{notes}"
    path.write_text("# old tables, no notes\n")
    assert compare.with_kept_notes("# new tables\n", path) == "# new tables\n"
