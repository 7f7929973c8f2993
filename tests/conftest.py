"""Hypothesis profiles for the whole suite.

`make test` (and so CI) uses "repeatable": every property test draws the same examples on every
run, so a landing never fails on an example nobody has seen. New examples are found with
`make test-explore` (profile "explore": fresh random examples, and 500 of them where a test does
not set its own count); a failure there is a bug to fix and to pin as an explicit case.
Neither has a deadline: how long an example takes is a benchmark's business, and a loaded CI
machine must not fail a correct test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
