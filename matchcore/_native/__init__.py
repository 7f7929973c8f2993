"""Compiled core, built from src_ext/ by setup.py: `kernel` is the matching kernel
(Arrow access, hashing, hash tables, linking, rules, annual walk), see src_ext/kernel.pyx.
"""
