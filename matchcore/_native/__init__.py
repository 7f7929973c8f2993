"""Compiled core (built from src_ext/ by setup.py)."""
