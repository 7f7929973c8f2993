"""Engines: the reference engine (Polars) and the compiled kernel, behind one interface."""
