"""Compiled core, built from src_ext/ by setup.py: `kernel` is the matching kernel
(Arrow access, hashing, hash tables, linking, rules, annual walk), see src_ext/kernel.pyx;
`ceb_scan` reads CEB customs XML messages without lxml, see src_ext/ceb_scan.pyx; `text_scan`
tells the normaliser which text needs cleaning, see src_ext/text_scan.pyx; `intake` checks
streaming messages, converts them to the canonical rows and links the stream matcher keeps,
and makes their log records, see src_ext/intake.pyx; `packed` reads the streaming matcher's
packed canonical rows into Arrow arrays, see src_ext/packed.pyx; `slots` is the stream
matcher's order slot in C fields, see src_ext/slots.pyx (declared in slots.pxd here).
"""

import os

# OpenMP threads that wait by spinning take the core from the other thread when the machine
# is busy (a 5,000-order run took 256 ms instead of 14 ms); sleeping costs nothing measurable
# at 1M orders. libgomp reads this when it loads, so it is set before any module here loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
