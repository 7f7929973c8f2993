"""The rule catalogue of SPEC §3, declared once: codes, bit positions, default severities,
parameters, and the typed settings that override them (from Python or a TOML file).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from .exceptions import RuleConfigError
from .schema import MONEY_SCALE

Severity = Literal["reject", "review", "warn", "off"]
SEVERITIES: tuple[Severity, ...] = ("reject", "review", "warn", "off")


class Rule(IntEnum):
    """Rule codes; the value is the bit position in `reason_mask` (SPEC §4)."""

    ORDER_DUPLICATE = 0
    PAYMENT_MISSING = 1
    PAYMENT_DUPLICATE = 2
    WAYBILL_MISSING = 3
    WAYBILL_DUPLICATE = 4
    ITEMS_MISSING = 5
    PAY_AMOUNT_MISMATCH = 6
    PAYER_ID_MISMATCH = 7
    PAYER_NAME_MISMATCH = 8
    PAY_REFERENCE_MISMATCH = 9
    CURRENCY_MISMATCH = 10
    ORDER_TOTAL_MISMATCH = 11
    GOODS_VALUE_MISMATCH = 12
    LINE_TOTAL_MISMATCH = 13
    CONSIGNEE_MISMATCH = 14
    CONSIGNEE_PHONE_MISMATCH = 15
    ARRIVAL_WINDOW_EXCEEDED = 16
    BUYER_ID_INVALID = 17
    SINGLE_LIMIT_EXCEEDED = 18
    ANNUAL_LIMIT_EXCEEDED = 19
    ENTERPRISE_NOT_FILED = 20
    ENTERPRISE_INACTIVE = 21
    ENTERPRISE_DISHONEST = 22
    PRODUCT_NOT_FILED = 23
    PRODUCT_NOT_ON_POSITIVE_LIST = 24
    PRODUCT_PROHIBITED = 25
    TAX_MISMATCH = 26
    INVENTORY_MISSING = 27
    INVENTORY_MISMATCH = 28

    @property
    def bit(self) -> int:
        return 1 << self.value


#: Every rule with its bit, in rule order: walking the enum and reading `bit` costs about 1 µs
#: a rule, and the stream works out a verdict and its reasons per new reason mask.
_RULE_BITS = tuple((rule, rule.bit) for rule in Rule)
_CODE_OF_BIT = {bit: rule.name for rule, bit in _RULE_BITS}

DEFAULT_SEVERITY: dict[Rule, Severity] = {rule: "reject" for rule in Rule}
DEFAULT_SEVERITY[Rule.CONSIGNEE_PHONE_MISMATCH] = "warn"
DEFAULT_SEVERITY[Rule.ARRIVAL_WINDOW_EXCEEDED] = "review"
DEFAULT_SEVERITY[Rule.ENTERPRISE_DISHONEST] = "review"

#: Rules whose exception rows have a subject: a party code or an order line (SPEC §4).
PARTY_RULES = frozenset(
    {Rule.ENTERPRISE_NOT_FILED, Rule.ENTERPRISE_INACTIVE, Rule.ENTERPRISE_DISHONEST}
)
LINE_RULES = frozenset(
    {
        Rule.LINE_TOTAL_MISMATCH,
        Rule.PRODUCT_NOT_FILED,
        Rule.PRODUCT_NOT_ON_POSITIVE_LIST,
        Rule.PRODUCT_PROHIBITED,
    }
)


class Party(IntEnum):
    """The parties an order names, in reporting order, with where each code is read."""

    EBP = 0  # orders.ebp_code
    EBC = 1  # orders.ebc_code
    PAY = 2  # payments.pay_code of the single linked payment
    LOGISTICS = 3  # waybills.logistics_code of the single linked waybill
    AGENT = 4  # inventories.agent_code of the linked inventory (inventory rules on)

    @property
    def role(self) -> str:
        return ("ebp", "ebc", "pay", "logistics", "agent")[self.value]

    @property
    def column(self) -> str:
        return ("ebp_code", "ebc_code", "pay_code", "logistics_code", "agent_code")[self.value]


_MONEY_RE = re.compile(r"^\s*\d+(\.\d{1,4})?\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _money(value: object, name: str) -> int:
    """Exact money parameter -> ten-thousandths (strings/ints exact; floats via repr)."""
    if isinstance(value, bool):
        raise RuleConfigError(f"parameter {name}: expected an amount in CNY, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RuleConfigError(f"parameter {name}: {value!r} is not an amount") from None
    scaled = amount * MONEY_SCALE
    if amount < 0 or scaled != scaled.to_integral_value():
        raise RuleConfigError(
            f"parameter {name}: {value!r} must be a non-negative amount with at most 4 decimals"
        )
    return int(scaled)


def _seconds(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION_RE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise RuleConfigError(
            f"parameter {name}: {value!r} is not a duration (seconds, or like '24h', '90m')"
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


class Parameters(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Rule parameters (SPEC §3) in canonical units: money in ten-thousandths, time in seconds."""

    amount_tolerance: int = 0
    tax_tolerance: int = 1_000  # 0.10 CNY
    single_limit: int = 5_000 * MONEY_SCALE
    annual_limit: int = 26_000 * MONEY_SCALE
    tax_discount: float = 0.7
    arrival_window: int = 24 * 3600

    @property
    def arrival_window_us(self) -> int:
        return self.arrival_window * 1_000_000


class _ParametersFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Parameters as written by people: money in CNY, durations like "24h"."""

    amount_tolerance: str | int | float | None = None
    tax_tolerance: str | int | float | None = None
    single_limit: str | int | float | None = None
    annual_limit: str | int | float | None = None
    tax_discount: float | None = None
    arrival_window: str | int | None = None


class _RulesFile(msgspec.Struct, forbid_unknown_fields=True):
    severity: dict[str, str] = {}
    parameters: _ParametersFile = _ParametersFile()


class VerdictMasks(NamedTuple):
    """The bits of the rules of each severity that decides a verdict, and of those enabled
    (`RuleSettings.verdict_masks`)."""

    reject: int
    review: int
    enabled: int

    def verdict_of(self, mask: int) -> str:
        """`RuleSettings.verdict_of`."""
        if mask & self.reject:
            return "reject"
        return "review" if mask & self.review else "pass"

    def reasons_of(self, mask: int) -> list[str]:
        """`RuleSettings.reasons_of`: the failed, enabled rules' bits from the lowest, which is
        rule order (a rule's bit is its value)."""
        reasons = []
        failed = mask & self.enabled
        while failed:
            lowest = failed & -failed
            reasons.append(_CODE_OF_BIT[lowest])
            failed ^= lowest
        return reasons


class RuleSettings(msgspec.Struct, frozen=True):
    """Severities and parameters for one run. `RuleSettings()` is SPEC's defaults."""

    severity: dict[Rule, Severity] = msgspec.field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    parameters: Parameters = Parameters()

    def severity_of(self, rule: Rule) -> Severity:
        return self.severity[rule]

    def enabled(self, rule: Rule) -> bool:
        return self.severity[rule] != "off"

    @property
    def enabled_mask(self) -> int:
        """Bits of the rules that are evaluated and reported (severity not `off`)."""
        return sum(bit for rule, bit in _RULE_BITS if self.enabled(rule))

    def mask_of(self, severity: Severity) -> int:
        """Bits of the rules that have this severity."""
        return sum(bit for rule, bit in _RULE_BITS if self.severity[rule] == severity)

    def verdict_of(self, mask: int) -> str:
        """An order's verdict from its failed rules (SPEC §3): reject, review or pass.

        The per-value form of `render.verdict_expr`, for callers that hold one order."""
        return self.verdict_masks().verdict_of(mask)

    def reasons_of(self, mask: int) -> list[str]:
        """The codes of the failed, enabled rules in rule order (as `render.reasons_expr`)."""
        return self.verdict_masks().reasons_of(mask)

    def verdict_masks(self) -> VerdictMasks:
        """What `verdict_of` and `reasons_of` read of these settings, worked out once: for
        callers that decide many masks (each rule's severity looked up costs some 40K
        instructions a mask)."""
        return VerdictMasks(self.mask_of("reject"), self.mask_of("review"), self.enabled_mask)

    @classmethod
    def from_overrides(
        cls,
        severity: dict[str, str] | None = None,
        **parameters: object,
    ) -> RuleSettings:
        """Settings from rule-code -> severity overrides and human-unit parameters.

        Money parameters are CNY (``"0.10"``, ``5000``), ``arrival_window`` is seconds or a
        string like ``"24h"``. Unknown codes, severities or parameters raise RuleConfigError.
        """
        merged = dict(DEFAULT_SEVERITY)
        for code, level in (severity or {}).items():
            try:
                rule = Rule[code.strip().upper()]
            except KeyError:
                raise RuleConfigError(f"unknown rule code {code!r}") from None
            level = str(level).strip().lower()
            if level not in SEVERITIES:
                raise RuleConfigError(
                    f"rule {rule.name}: severity {level!r} is not one of {', '.join(SEVERITIES)}"
                )
            merged[rule] = level  # type: ignore[assignment]
        values: dict[str, object] = {}
        for name, value in parameters.items():
            if value is None:
                continue
            if name in ("amount_tolerance", "tax_tolerance", "single_limit", "annual_limit"):
                values[name] = _money(value, name)
            elif name == "arrival_window":
                values[name] = _seconds(value, name)
            elif name == "tax_discount":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise RuleConfigError(f"parameter tax_discount: {value!r} is not a fraction")
                values[name] = float(value)
            else:
                raise RuleConfigError(f"unknown parameter {name!r}")
        return cls(severity=merged, parameters=Parameters(**values))  # type: ignore[arg-type]

    @classmethod
    def from_toml(cls, path: str | Path) -> RuleSettings:
        """Read settings from a TOML file with `[severity]` and `[parameters]` tables."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RuleConfigError(f"{path}: cannot read rules file ({exc.strerror})") from None
        try:
            decoded = msgspec.toml.decode(raw, type=_RulesFile)
        except msgspec.ValidationError as exc:
            raise RuleConfigError(f"{path}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise RuleConfigError(f"{path}: not valid TOML ({exc})") from None
        try:
            return cls.from_overrides(
                decoded.severity, **msgspec.structs.asdict(decoded.parameters)
            )
        except RuleConfigError as exc:
            raise RuleConfigError(f"{path}: {exc}") from None
