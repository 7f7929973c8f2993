"""Compiled core, built from src_ext/ by setup.py: `kernel` is the matching kernel
(Arrow access, hashing, hash tables, linking, rules, annual walk), see src_ext/kernel.pyx;
`ceb_scan` reads CEB customs XML messages without lxml, see src_ext/ceb_scan.pyx.
"""
