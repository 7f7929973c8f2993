"""The README's rule settings example is a valid rules file."""

from __future__ import annotations

import re
from pathlib import Path

from matchcore import Rule, RuleSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_toml_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    path = tmp_path / "rules.toml"
    path.write_text(blocks[0], encoding="utf-8")
    settings = RuleSettings.from_toml(path)
    assert settings.severity_of(Rule.ARRIVAL_WINDOW_EXCEEDED) == "off"
    assert settings.severity_of(Rule.CONSIGNEE_PHONE_MISMATCH) == "review"
    assert settings.parameters.amount_tolerance == 100
    assert settings.parameters.arrival_window == 48 * 3600
