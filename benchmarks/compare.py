"""Comparative benchmark: the compiled kernel vs the Polars reference engine vs hand-written
DuckDB SQL, on the same generated data, plus Parquet -> Parquet end to end with the CLI.

    python -m benchmarks.compare                      # 1M, 2M, 5M, 10M orders, 3 repetitions
    python -m benchmarks.compare --quick              # small smoke run (results under build/)
    python -m benchmarks.compare --sizes 1M,2M --repeat 3 --repeat-at 10M=1

Each measurement runs in its own subprocess (the canonical tables are read from an uncompressed
Arrow IPC cache, so every engine sees the same bytes); the worker times `engine.run()` and reads
its peak RSS. Engines are interleaved per repetition. Outputs are compared before any time is
reported; `benchmarks/RESULTS.md`, `benchmarks/results/compare.json` and a chart are written.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from matchcore.engine.base import TABLE_NAMES, CanonicalTables
from matchcore.rules import RuleSettings

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "bench"
ENGINES = ("kernel", "reference", "duckdb")
COMPARED_COLUMNS = ("reason_mask", "computed_tax", "limit_value")
#: Product-owner targets at the largest size (see RESULTS.md verdict lines).
TARGET_VS_REFERENCE = 5.0
TARGET_VS_DUCKDB = 3.0
TARGET_E2E_OVER_KERNEL = 2.0
TARGET_PEAK_OVER_ARROW = 3.0


# --- sizes and arguments -----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """'10M' -> 10_000_000, '50k' -> 50_000, '1200' -> 1200."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    return int(float(number) * scale)


def size_label(orders: int) -> str:
    """1_000_000 -> '1M', 50_000 -> '50k'."""
    if orders % 1_000_000 == 0:
        return f"{orders // 1_000_000}M"
    if orders % 1_000 == 0:
        return f"{orders // 1_000}k"
    return str(orders)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("--sizes", default="1M,2M,5M,10M", help="order counts, e.g. 1M,2M")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per size")
    parser.add_argument(
        "--repeat-at",
        action="append",
        default=[],
        metavar="SIZE=N",
        help="a different repetition count for one size (e.g. 10M=1)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k and 50k, 2 reps")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="subset of " + ",".join(ENGINES)
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--e2e-repeat", type=int, default=1, help="end-to-end runs per size")
    parser.add_argument("--no-e2e", action="store_true", help="skip Parquet -> Parquet timing")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--results", type=Path, help="where RESULTS.md and results/ go")
    parser.add_argument(
        "--rewrite-report",
        action="store_true",
        help="rewrite RESULTS.md and the chart from results/compare.json (no measuring)",
    )
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--canonical", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "20k,50k" if args.sizes == parser.get_default("sizes") else args.sizes
        args.repeat = 2
        args.results = args.results or CACHE / "quick"
    args.results = args.results or REPO / "benchmarks"
    return args


def repetitions(args: argparse.Namespace) -> dict[int, int]:
    """Repetitions per size: --repeat, overridden per size by --repeat-at."""
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    counts = dict.fromkeys(sizes, args.repeat)
    for item in args.repeat_at:
        size, _, count = item.partition("=")
        counts[parse_size(size)] = int(count)
    return {size: counts[size] for size in sorted(counts)}


# --- data: generated Parquet and the canonical Arrow cache -------------------------------------


def data_dir(orders: int, seed: int) -> Path:
    return CACHE / f"data-{orders}-seed{seed}"


def ensure_generated(orders: int, seed: int) -> Path:
    """The generated Parquet directory for (orders, seed), made once and reused."""
    from matchcore.generate import generate

    directory = data_dir(orders, seed)
    if not (directory / ".complete").exists():
        start = time.perf_counter()
        generate(orders, seed=seed, out=directory)
        (directory / ".complete").write_text("generated\n")
        log(f"{size_label(orders)}: generated in {time.perf_counter() - start:.1f} s")
    return directory


#: The code that decides the canonical tables: a cache made by other code is made again.
CANONICAL_CODE = ("matchcore/normalise.py", "matchcore/schema.py", "matchcore/china_time.py")


def canonical_code_digest() -> str:
    """A digest of `CANONICAL_CODE` as it is now."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in CANONICAL_CODE:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_canonical(directory: Path) -> dict[str, Any]:
    """Normalise the generated tables once and cache them as uncompressed Arrow IPC files,
    again when the normaliser's code changed since.

    Tables are normalised and written one at a time, so only one is in memory (at 10M orders
    all of them together do not fit with a raw table beside them). Returns the cache's facts:
    Arrow size of the inputs, rows per table, normalise seconds.
    """
    from matchcore.normalise import iter_tables
    from matchcore.progress import PhaseTracker

    canonical = directory / "canonical"
    meta_path = canonical / "meta.json"
    code = canonical_code_digest()
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("code") == code:
            return meta  # type: ignore[no-any-return]
        log(
            f"{directory.name}: the normaliser changed since its canonical cache, normalising again"
        )
    canonical.mkdir(exist_ok=True)
    tracker = PhaseTracker()  # read and normalise time, not the cache writes
    rows, arrow_bytes = {}, 0
    for table in iter_tables(directory, progress=tracker):
        arrow_bytes += write_one_batch(table.frame, canonical / f"{table.name}.arrow")
        rows[table.name] = table.frame.height
        del table
    seconds = sum(tracker.timings.values())
    meta = {"rows": rows, "arrow_bytes": arrow_bytes, "normalise_seconds": seconds, "code": code}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"{directory.name}: normalised in {seconds:.1f} s, inputs {arrow_bytes / 2**30:.2f} GiB")
    return meta


def write_one_batch(frame: pl.DataFrame, path: Path) -> int:
    """Write the frame as an uncompressed Arrow IPC file holding one record batch, so it reads
    back as one chunk per column, as `normalise_table` hands tables to the engines (Polars would
    split it, and the kernel would then copy every column into one chunk inside the timed run).
    Strings keep Polars' own layout (string_view), so reading them back copies nothing. Returns
    the table's Arrow size in bytes."""
    import pyarrow as pa

    table = frame.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))
    return table.get_total_buffer_size()


def read_canonical(canonical: Path) -> tuple[CanonicalTables, int]:
    """The cached canonical tables, read fully into memory (not memory-mapped: no page faults
    inside the timed run), and their Arrow size in bytes: every buffer, as pyarrow counts it
    (Polars' `estimated_size` leaves out most of a string view column)."""
    import pyarrow as pa

    frames, arrow_bytes = {}, 0
    for name in TABLE_NAMES:
        path = canonical / f"{name}.arrow"
        if path.exists():
            with pa.OSFile(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
            arrow_bytes += table.get_total_buffer_size()
            frames[name] = pl.from_arrow(table)
    return CanonicalTables(**frames), arrow_bytes  # type: ignore[arg-type]


# --- worker: one engine, one run, in its own process -------------------------------------------


def proc_status_kib(field_name: str) -> int:
    """A `VmXXX` field of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def make_engine(name: str) -> Any:
    """The engine object for a name (the kernel import fails when it is not built)."""
    if name == "kernel":
        from matchcore.engine.kernel import KernelEngine

        return KernelEngine()
    if name == "reference":
        from matchcore.engine.reference import ReferenceEngine

        return ReferenceEngine()
    from benchmarks.duckdb_engine import DuckDBEngine

    return DuckDBEngine()


def order_results(name: str, output: Any) -> pl.DataFrame:
    """The compared per-order columns, whatever the engine returns."""
    frame = output if isinstance(output, pl.DataFrame) else output.orders
    return frame.select(COMPARED_COLUMNS)


def run_worker(engine_name: str, canonical: Path, output: Path) -> dict[str, Any]:
    """Time one `engine.run()` on the cached tables; write its per-order results to `output`."""
    engine = make_engine(engine_name)
    tables, input_bytes = read_canonical(canonical)
    settings = RuleSettings()
    gc.collect()
    rss_before = proc_status_kib("VmRSS")
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    result = engine.run(tables, settings)
    seconds = time.perf_counter() - start
    peak = proc_status_kib("VmHWM")
    order_results(engine_name, result).write_ipc(output, compression="uncompressed")
    return {
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak,
        "peak_reset": peak_reset,
        "input_bytes": input_bytes,
    }


# --- the driver --------------------------------------------------------------------------------


def snapshot_code() -> Path:
    """A private copy of `matchcore/` (with the built kernel) and `benchmarks/`; every
    subprocess runs from it, so edits or rebuilds in the working tree during a long run do not
    mix two versions of the code into one set of results."""
    target = CACHE / "code"
    shutil.rmtree(target, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "results", "*.md")
    for package in ("matchcore", "benchmarks"):
        shutil.copytree(REPO / package, target / package, ignore=ignore)
    return target


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class SizeResult:
    """Everything measured at one size."""

    orders: int
    arrow_bytes: int
    rows: dict[str, int]
    normalise_seconds: float
    repeat: int
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    agree: dict[str, bool] = field(default_factory=dict)
    differing_rows: dict[str, int] = field(default_factory=dict)
    truth_rows: dict[str, int] = field(default_factory=dict)  # rows differing from the truth
    failures: dict[str, str] = field(default_factory=dict)
    e2e: list[dict[str, Any]] = field(default_factory=list)
    oracle: str = "reference"  # the engine every other engine's outputs were compared with


def measure(
    engine: str, canonical: Path, output: Path, timeout: float, code: Path
) -> dict[str, Any]:
    """Run one worker subprocess; its JSON line, or {"error": ...}."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.compare",
        "--worker",
        engine,
        "--canonical",
        str(canonical),
        "--output",
        str(output),
    ]
    try:
        done = subprocess.run(
            command, cwd=code, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return {"error": f"exit code {done.returncode}: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def differing(expected: Path, actual: Path) -> int:
    """Order rows whose compared columns differ between two result files."""
    left, right = pl.read_ipc(expected), pl.read_ipc(actual)
    if left.height != right.height:
        return max(left.height, right.height)
    same = pl.lit(True)
    for column in COMPARED_COLUMNS:
        same = same & pl.col(column).eq_missing(pl.col(f"{column}_other"))
    joined = pl.concat([left, right.rename(lambda c: f"{c}_other")], how="horizontal")
    return int(joined.select((~same).sum()).item())


def run_end_to_end(directory: Path, out: Path, timeout: float, code: Path) -> dict[str, Any]:
    """`matchcore match --data DIR --out OUT --engine kernel` as a subprocess: wall time, peak
    RSS of the child, and the CLI's own phase timings (summary.json)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "matchcore",
        "match",
        "--data",
        str(directory),
        "--out",
        str(out),
        "--engine",
        "kernel",
        "--quiet",
    ]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    seconds = time.perf_counter() - start
    if child.returncode not in (0, 3):
        return {"error": f"exit code {child.returncode}: {stderr.decode()[-300:]}"}
    summary = json.loads((out / "summary.json").read_text())
    return {"seconds": seconds, "phases": summary.get("timings", {})}


def run_size(orders: int, repeat: int, args: argparse.Namespace, engines: list[str]) -> SizeResult:
    """Prepare one size and measure every engine `repeat` times, interleaved; check outputs."""
    directory = ensure_generated(orders, args.seed)
    meta = ensure_canonical(directory)
    canonical = directory / "canonical"
    result = SizeResult(
        orders, meta["arrow_bytes"], meta["rows"], meta["normalise_seconds"], repeat
    )
    outputs = CACHE / "runs"
    outputs.mkdir(parents=True, exist_ok=True)
    for rep in range(repeat):
        # Rotate the start so no engine always runs first (machine noise drifts over time).
        order = engines[rep % len(engines) :] + engines[: rep % len(engines)]
        for engine in order:
            if engine in result.failures:
                continue
            output = outputs / f"{orders}-{engine}.arrow"
            sample = measure(engine, canonical, output, args.timeout, args.code)
            if "error" in sample:
                result.failures[engine] = sample["error"]
                log(f"{size_label(orders)} {engine}: {sample['error']}")
                continue
            result.samples.setdefault(engine, []).append(sample)
            log(
                f"{size_label(orders)} rep {rep + 1} {engine}: {sample['seconds']:.2f} s, "
                f"peak {sample['peak_rss_kib'] / 2**20:.2f} GiB"
            )
        check_agreement(result, outputs, engines)
        check_truth(result, directory, outputs)
    if not args.no_e2e and "kernel" not in result.failures and "kernel" in engines:
        for _ in range(args.e2e_repeat):
            sample = run_end_to_end(directory, CACHE / "e2e-out", args.timeout, args.code)
            result.e2e.append(sample)
            log(f"{size_label(orders)} end to end: {sample.get('seconds', sample.get('error'))}")
    return result


def check_agreement(result: SizeResult, outputs: Path, engines: list[str]) -> None:
    """Compare this repetition's outputs with the oracle's; a disagreement is sticky.

    The oracle is the reference engine; if it failed (time-out, out of memory), the next
    engine that ran, so the others are still checked against an independent implementation.
    """
    ran = [e for e in ("reference", "duckdb", "kernel") if e in engines and e in result.samples]
    ran = [e for e in ran if e not in result.failures]
    if not ran:
        return
    result.oracle = ran[0]
    expected = outputs / f"{result.orders}-{result.oracle}.arrow"
    _compare_outputs(result, expected, outputs, engines, result.differing_rows)


def _compare_outputs(
    result: SizeResult, expected: Path, outputs: Path, engines: Iterable[str], worst: dict[str, int]
) -> None:
    """Compare each engine's outputs that ran with `expected`: a disagreement is sticky, and
    `worst` keeps the most rows that ever differed."""
    for engine in engines:
        if engine in result.failures or not result.samples.get(engine):
            continue
        rows = differing(expected, outputs / f"{result.orders}-{engine}.arrow")
        result.agree[engine] = result.agree.get(engine, True) and rows == 0
        worst[engine] = max(rows, worst.get(engine, 0))


def truth_results(directory: Path, outputs: Path) -> Path:
    """The generator's ground truth (`truth.parquet`) as a results file like the workers',
    money in ten-thousandths."""
    from matchcore.report.source import money_units_expr

    path = outputs / f"{directory.name}-truth.arrow"
    if not path.exists():
        truth = pl.read_parquet(directory / "truth.parquet", columns=list(COMPARED_COLUMNS))
        money = [money_units_expr("computed_tax"), money_units_expr("limit_value")]
        truth.with_columns(money).write_ipc(path)
    return path


def check_truth(result: SizeResult, directory: Path, outputs: Path) -> None:
    """Compare this repetition's outputs with the generator's ground truth too: an oracle that
    is there even when the reference engine and DuckDB cannot run (out of memory at 10M)."""
    expected = truth_results(directory, outputs)
    _compare_outputs(result, expected, outputs, list(result.samples), result.truth_rows)


# --- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM and OS of this machine."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kib / 2**20:.1f} GiB",
        "os": os_name,
    }


def versions() -> dict[str, str]:
    import duckdb
    import numpy
    import pyarrow

    import matchcore

    return {
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
        "matchcore": matchcore.__version__,
    }


def kernel_build(root: Path = REPO) -> str:
    """The compiled kernel's file and modification time under `root`."""
    built = sorted((root / "matchcore" / "_native").glob("kernel*.so"))
    if not built:
        return "not built"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(built[0].stat().st_mtime))
    return f"{built[0].name} modified {stamp} UTC"


def stats(samples: list[dict[str, Any]]) -> dict[str, float]:
    times = [s["seconds"] for s in samples]
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def valid_engines(result: SizeResult) -> list[str]:
    """Engines with samples whose outputs agreed with the oracle at this size."""
    return [e for e in result.samples if result.agree.get(e, False)]


def medians(results: list[SizeResult]) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for result in results:
        for engine in valid_engines(result):
            table.setdefault(engine, {})[result.orders] = stats(result.samples[engine])["median"]
    return table


def gib(kib_or_bytes: float, *, kib: bool = False) -> str:
    return f"{kib_or_bytes / (2**20 if kib else 2**30):.2f}"


def timing_table(results: list[SizeResult]) -> list[str]:
    lines = [
        "| orders | engine | median s | min s | max s | runs | Polars ref / kernel | "
        "DuckDB / kernel | outputs equal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        med = {e: stats(result.samples[e])["median"] for e in valid_engines(result)}
        for engine in ENGINES:
            if engine in result.failures:
                lines.append(
                    f"| {size_label(result.orders)} | {engine} | failed: "
                    f"{result.failures[engine]} | | | | | | |"
                )
                continue
            if engine not in result.samples:
                continue
            s = stats(result.samples[engine])
            ok = result.agree.get(engine, False)
            ratio_ref = ratio_duck = ""
            if engine == "kernel" and "kernel" in med:
                if "reference" in med:
                    ratio_ref = f"{med['reference'] / med['kernel']:.2f}x"
                if "duckdb" in med:
                    ratio_duck = f"{med['duckdb'] / med['kernel']:.2f}x"
            shown = (
                f"{s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f}"
                if ok
                else "not reported (outputs differ) | | "
            )
            agree_text = (
                "yes"
                if ok
                else (
                    f"NO ({result.differing_rows.get(engine, '?')} rows differ from "
                    f"{result.oracle}, {result.truth_rows.get(engine, '?')} from the truth)"
                )
            )
            if result.oracle != "reference":
                others = "the ground truth"
                others = others if result.oracle == engine else f"{result.oracle} and {others}"
                why = "failed" if "reference" in result.failures else "was not run"
                agree_text += f" (compared with {others}: the reference engine {why})"
            lines.append(
                f"| {size_label(result.orders)} | {engine} | {shown} | "
                f"{len(result.samples[engine])} | {ratio_ref} | {ratio_duck} | {agree_text} |"
            )
    return lines


def input_bytes(result: SizeResult, engine: str) -> int:
    """Arrow size of the tables the engine received (as measured in its worker)."""
    measured = [s.get("input_bytes", 0) for s in result.samples.get(engine, [])]
    return max(measured, default=0) or result.arrow_bytes


def peak_bytes(result: SizeResult, engine: str) -> int:
    return max(s["peak_rss_kib"] for s in result.samples[engine]) * 1024


def memory_table(results: list[SizeResult]) -> list[str]:
    lines = [
        "| orders | engine | Arrow input GiB | RSS before run GiB | peak RSS GiB | "
        "peak - RSS before GiB | peak / Arrow input |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for engine, samples in result.samples.items():
            arrow, peak = input_bytes(result, engine), peak_bytes(result, engine)
            before = max(s["rss_before_kib"] for s in samples) * 1024
            lines.append(
                f"| {size_label(result.orders)} | {engine} | {gib(arrow)} | {gib(before)} | "
                f"{gib(peak)} | {gib(peak - before)} | {peak / arrow:.2f}x |"
            )
    return lines


def e2e_table(results: list[SizeResult]) -> list[str]:
    lines = [
        "| orders | end to end s (runs) | in-memory kernel median s | ratio | "
        "CLI phases s (last run) |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        done = [s for s in result.e2e if "seconds" in s]
        if not done:
            if result.e2e:
                lines.append(f"| {size_label(result.orders)} | {result.e2e[0]['error']} | | | |")
            continue
        e2e = statistics.median(s["seconds"] for s in done)
        kernel = stats(result.samples["kernel"])["median"] if "kernel" in result.samples else None
        phases = ", ".join(f"{k} {v:.2f}" for k, v in done[-1]["phases"].items())
        ratio = f"{e2e / kernel:.2f}x" if kernel else ""
        kernel_text = f"{kernel:.3f}" if kernel else ""
        lines.append(
            f"| {size_label(result.orders)} | {e2e:.2f} ({len(done)}) | {kernel_text} | "
            f"{ratio} | {phases} |"
        )
    return lines


def _ratio_to_kernel(engine: str) -> Callable[[SizeResult], float | None]:
    def ratio(result: SizeResult) -> float | None:
        med = {e: stats(result.samples[e])["median"] for e in valid_engines(result)}
        return med[engine] / med["kernel"] if "kernel" in med and engine in med else None

    return ratio


def _e2e_over_kernel(result: SizeResult) -> float | None:
    done = [s["seconds"] for s in result.e2e if "seconds" in s]
    if not done or "kernel" not in valid_engines(result):
        return None
    return statistics.median(done) / stats(result.samples["kernel"])["median"]


def _peak_over_arrow(result: SizeResult) -> float | None:
    if "kernel" not in result.samples:
        return None
    return peak_bytes(result, "kernel") / input_bytes(result, "kernel")


def _why_not_measured(result: SizeResult, engines: tuple[str, ...]) -> str:
    reasons = [f"{e}: {result.failures[e]}" for e in engines if e in result.failures]
    if "e2e" in engines:
        reasons += [f"end to end: {s['error']}" for s in result.e2e if "error" in s]
    return f" ({'; '.join(reasons)})" if reasons else ""


TARGETS = (
    # name, how it is measured, the engines it needs, goal, higher is better
    (
        "kernel vs Polars reference",
        _ratio_to_kernel("reference"),
        ("kernel", "reference"),
        TARGET_VS_REFERENCE,
        True,
    ),
    ("kernel vs DuckDB", _ratio_to_kernel("duckdb"), ("kernel", "duckdb"), TARGET_VS_DUCKDB, True),
    (
        "Parquet -> Parquet end to end / in-memory kernel",
        _e2e_over_kernel,
        ("kernel", "e2e"),
        TARGET_E2E_OVER_KERNEL,
        False,
    ),
    (
        "kernel peak RSS / Arrow input size",
        _peak_over_arrow,
        ("kernel",),
        TARGET_PEAK_OVER_ARROW,
        False,
    ),
)


def _target_line(name: str, value: float, goal: float, higher_is_better: bool) -> str:
    sign = ">=" if higher_is_better else "<="
    if (value >= goal) if higher_is_better else (value <= goal):
        return f"- {name}: **met** ({value:.2f}x; target {sign} {goal:g}x)."
    gap = goal / value if higher_is_better else value / goal
    return (
        f"- {name}: **missed** ({value:.2f}x against {sign} {goal:g}x; "
        f"off by a factor of {gap:.2f})."
    )


def verdict_lines(results: list[SizeResult]) -> list[str]:
    """Targets at the largest size; where one could not be measured there, why, and the
    verdict at the largest size where it was."""
    if not results:
        return []
    largest, smallest = results[-1], results[0]
    lines = []
    for name, measure, engines, goal, higher_is_better in TARGETS:
        for result in reversed(results):
            value = measure(result)
            label = size_label(result.orders)
            if value is not None:
                if result is not largest:
                    label += " (the largest size where it was measured)"
                lines.append(_target_line(f"{name} at {label}", value, goal, higher_is_better))
                break
            if result is largest:
                why = _why_not_measured(result, engines)
                lines.append(f"- {name}: not measured at {label}{why}.")
    label = size_label(largest.orders)
    if largest.orders != smallest.orders:
        factor = largest.orders / smallest.orders
        for engine, by_size in medians(results).items():
            if smallest.orders in by_size and largest.orders in by_size:
                growth = by_size[largest.orders] / by_size[smallest.orders]
                lines.append(
                    f"- growth {size_label(smallest.orders)} -> {label}, {engine}: time x"
                    f"{growth:.2f} for x{factor:g} orders (linear = x{factor:g}; "
                    f"{growth / factor:.2f} of linear)."
                )
    return lines


def write_chart(results: list[SizeResult], path: Path) -> None:
    """Time against size for each engine (median, min-max bars), log-log."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for engine in ENGINES:
        points = [
            (r.orders, stats(r.samples[engine])) for r in results if engine in valid_engines(r)
        ]
        if not points:
            continue
        xs = [p[0] / 1e6 for p in points]
        mid = [p[1]["median"] for p in points]
        low = [p[1]["median"] - p[1]["min"] for p in points]
        high = [p[1]["max"] - p[1]["median"] for p in points]
        axes.errorbar(xs, mid, yerr=[low, high], marker="o", capsize=3, label=engine)
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):  # plain numbers, not powers of ten
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(sorted({r.orders / 1e6 for r in results}))
    axes.set_xlabel("orders (millions)")
    axes.set_ylabel("engine.run() seconds (median; bars min-max)")
    axes.set_title("matchcore engines on the same in-memory data")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(
    results: list[SizeResult], args: argparse.Namespace, context: dict[str, Any]
) -> Path:
    """RESULTS.md, results/compare.json and results/compare_time_vs_size.png."""
    out = Path(args.results)
    raw_dir = out / "results"
    raw_dir.mkdir(parents=True, exist_ok=True)
    chart = raw_dir / "compare_time_vs_size.png"
    write_chart(results, chart)
    (raw_dir / "compare.json").write_text(
        json.dumps({**context, "sizes": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    info = context["machine"]
    v = context["versions"]
    lines = [
        "# Comparative benchmark: kernel vs Polars reference vs DuckDB SQL",
        "",
        "Written by `benchmarks/compare.py`; every number below comes from the run described "
        "here (raw samples in `results/compare.json`).",
        "",
        f"- Command: `{context['command']}`",
        "- Sizes planned (repetitions): "
        + ", ".join(f"{k} ({v})" for k, v in context["planned"].items())
        + "; completed: "
        + (", ".join(f"{size_label(r.orders)} ({r.repeat})" for r in results) or "none")
        + ".",
        f"- Code measured: a copy of `matchcore/` and `benchmarks/` taken at the start (kernel "
        f"{context['kernel_build']}); every subprocess ran that copy"
        + (
            "."
            if context["kernel_build"] == context.get("kernel_build_end", context["kernel_build"])
            else " (the working tree's kernel was rebuilt during the run: "
            f"{context['kernel_build_end']})."
        ),
        f"- Started {context['started']}, finished {context['finished']} (UTC); load average "
        f"at start {context['load_start']}, at end {context['load_end']} (the machine was "
        "shared with other jobs, so times are noisy; engines were interleaved per repetition).",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}.",
        f"- Versions: Python {v['python']}, polars {v['polars']}, duckdb {v['duckdb']}, "
        f"pyarrow {v['pyarrow']}, numpy {v['numpy']}, matchcore {v['matchcore']}.",
        f"- Data: `matchcore.generate.generate(N, seed={context.get('seed', args.seed)})` "
        "(default knobs: 5% anomalies, "
        "inventories, HS lists, quota ledger), normalised once per size and cached as "
        "uncompressed Arrow IPC; each measurement is a fresh subprocess that reads that cache "
        "into memory and times `engine.run(tables, RuleSettings())` only.",
        "- Peak memory: VmHWM of the worker process during the run (reset to the current RSS "
        "just before `run()`, so it includes the input tables resident in memory).",
        "- DuckDB: `benchmarks/duckdb_engine.py`; all of SPEC §3 is SQL, including the §3.1 "
        "annual walk (window sums for buyer-years that stay under the limit, a recursive CTE "
        "walks the others order by order). Nothing runs outside SQL except handing the "
        "tables to DuckDB as Arrow.",
        "- Outputs compared before reporting: `reason_mask`, `computed_tax` and `limit_value` "
        "of every order row, every repetition, against the Polars reference engine and against "
        "the generator's ground truth (`truth.parquet`, what it injected).",
        "",
        "## Verdict against the targets",
        "",
        *verdict_lines(results),
        "",
        "## Engine time (seconds, same in-memory data)",
        "",
        *timing_table(results),
        "",
        f"![time against size]({chart.relative_to(out).as_posix()})",
        "",
        "## Parquet -> Parquet end to end (`matchcore match --engine kernel`)",
        "",
        *e2e_table(results),
        "",
        "## Peak memory",
        "",
        *memory_table(results),
        "",
        "## Data sizes",
        "",
        "| orders | rows per canonical table | normalise (one-off) s |",
        "|---|---|---|",
        *[
            f"| {size_label(r.orders)} | "
            + ", ".join(f"{k} {n:,}" for k, n in r.rows.items())
            + f" | {r.normalise_seconds:.1f} |"
            for r in results
        ],
        "",
    ]
    path = out / "RESULTS.md"
    path.write_text(with_kept_notes("\n".join(lines), path))
    return path


#: Where the generated part of RESULTS.md ends: what follows is written by hand from other runs.
NOTES_MARKER = (
    "<!-- Written by hand from here on (each section names its command); compare.py keeps it. -->"
)


def with_kept_notes(generated: str, path: Path) -> str:
    """The generated report, followed by the notes of the report at `path` (from
    `NOTES_MARKER` on): a rerun must not delete the analysis and the other benchmarks' results
    recorded below the tables."""
    old = path.read_text() if path.exists() else ""
    at = old.find(NOTES_MARKER)
    return generated if at < 0 else f"{generated}\n{old[at:]}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.canonical, args.output)))
        return 0
    if args.rewrite_report:
        saved = json.loads((Path(args.results) / "results" / "compare.json").read_text())
        sizes = [SizeResult(**size) for size in saved.pop("sizes")]
        log(f"rewrote {write_report(sizes, args, saved)}")
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engines: {', '.join(sorted(unknown))}")
    args.code = snapshot_code()
    context: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.compare", *(argv or sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_start": load_average(),
        "machine": machine(),
        "versions": versions(),
        "kernel_build": kernel_build(args.code),
        "planned": {size_label(n): r for n, r in repetitions(args).items()},
        "seed": args.seed,
    }
    results = []
    for orders, repeat in repetitions(args).items():
        results.append(run_size(orders, repeat, args, engines))
        context.update(
            finished=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            load_end=load_average(),
            kernel_build_end=kernel_build(),
        )
        path = write_report(results, args, context)  # after each size: a partial run still reports
        log(f"{size_label(orders)} done; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
