"""An order's verdict and reason codes from its reason mask (SPEC §3), under any severities."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matchcore.rules import SEVERITIES, Rule, RuleSettings


@settings(max_examples=300, deadline=None)
@given(
    severity=st.dictionaries(
        st.sampled_from([rule.name for rule in Rule]), st.sampled_from(SEVERITIES)
    ),
    # with bits past the rules', which name no rule
    mask=st.integers(0, 2 ** (len(Rule) + 3) - 1),
)
def test_verdict_and_reasons_of_a_mask(severity: dict[str, str], mask: int) -> None:
    """Reject when a failed rule is a reject rule, else review when one is a review rule,
    else pass; the reasons are the failed rules not off, in rule order. Worked out here rule
    by rule from the severities, against the masks the settings work out once."""
    rules = RuleSettings.from_overrides(severity)
    failed = [rule for rule in Rule if mask >> rule.value & 1]
    severities = {rules.severity[rule] for rule in failed}
    expected = next((v for v in ("reject", "review") if v in severities), "pass")
    assert rules.verdict_of(mask) == expected
    assert rules.reasons_of(mask) == [rule.name for rule in failed if rules.severity[rule] != "off"]
    masks = rules.verdict_masks()
    assert (masks.verdict_of(mask), masks.reasons_of(mask)) == (expected, rules.reasons_of(mask))
