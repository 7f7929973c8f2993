"""Masking of identity values (ID numbers, names, phones) for outputs and messages (SPEC §4)."""

from __future__ import annotations

import polars as pl

#: Columns whose values are names: all but the first character are masked.
NAME_COLUMNS = frozenset({"buyer_name", "payer_name", "consignee"})


def mask_tail_expr(expr: pl.Expr, keep: int = 4) -> pl.Expr:
    """All but the last `keep` characters become `*` (ID numbers, phones)."""
    return expr.str.slice(-keep).str.pad_start(expr.str.len_chars(), "*")


def mask_name_expr(expr: pl.Expr) -> pl.Expr:
    """All but the first character become `*` (names)."""
    return expr.str.slice(0, 1).str.pad_end(expr.str.len_chars(), "*")


def mask_expr(expr: pl.Expr, column: str) -> pl.Expr:
    """The masking that suits an identity column (names vs numbers)."""
    return mask_name_expr(expr) if column in NAME_COLUMNS else mask_tail_expr(expr)


def mask_value(value: str | None, column: str) -> str | None:
    """Mask one Python string the way `mask_expr` masks a column."""
    if value is None:
        return None
    if column in NAME_COLUMNS:
        return value[:1] + "*" * max(len(value) - 1, 0)
    return "*" * max(len(value) - 4, 0) + value[-4:]
