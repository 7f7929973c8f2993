"""Build the compiled core: every src_ext/<name>.pyx becomes matchcore._native.<name>."""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
COMPILE_ARGS = [
    "-O3",
    "-ffp-contract=off",  # SPEC 3.2: no fused multiply-add
    "-fopenmp",
    # The per-row helpers (column accessors, text compares) are `cdef inline` but gcc's size
    # limits left them as calls on the hot paths (seen in perf); raise the limits.
    "--param=max-inline-insns-single=1000",
    "--param=max-inline-insns-auto=300",
]
#: The kernel's unit may grow more by inlining: it was at gcc's limit, so an edit anywhere in
#: it left `key_at` and `col_str` as calls again (callgrind). Not for the others: their code
#: would double in size.
KERNEL_ARGS = ["--param=inline-unit-growth=400"]
LINK_ARGS = ["-fopenmp"]

extensions = [
    Extension(
        f"matchcore._native.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=["src_ext", "src_ext/includes"],
        extra_compile_args=COMPILE_ARGS + (KERNEL_ARGS if pyx.stem == "kernel" else []),
        extra_link_args=LINK_ARGS,
    )
    for pyx in sorted((HERE / "src_ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src_ext", "."],  # "." for matchcore/_native/*.pxd
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,  # C integer division in the kernel (no zero checks, no GIL)
        },
    ),
)
