"""Synthetic reference data: enterprise filings, product filings and the HS lists.

The catalogue is small (hundreds of enterprises, thousands of products), so it is built with
plain Python; each entry records what it is *for* (a clean party, or a party that fails a given
enterprise rule), which is what the anomaly injection and the ground truth read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from ..rules import Rule

CHINA = timezone(timedelta(hours=8))
CUSTOMS_AREAS = ("3101", "3105", "3122", "4403", "4401", "3302", "3201", "5101", "1101", "3702")
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 alphabet (no I, O, S, V, Z)
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: Party roles that anomalies may replace (the ebc is tied to its products, so it stays clean).
INJECTABLE_ROLES = ("ebp", "pay", "logistics", "agent")

#: HS heading -> (product names, VAT rate, consumption-tax rate); all on the positive list.
GOOD_HEADINGS: dict[str, tuple[tuple[str, ...], float, float]] = {
    "0402": (("婴幼儿配方奶粉", "全脂奶粉", "脱脂奶粉"), 0.09, 0.0),
    "0401": (("进口纯牛奶", "有机全脂牛奶"), 0.09, 0.0),
    "1901": (("婴儿米粉", "麦片早餐"), 0.13, 0.0),
    "2106": (("蛋白粉", "复合维生素软糖", "益生菌固体饮料"), 0.13, 0.0),
    "0901": (("烘焙咖啡豆", "挂耳咖啡"), 0.13, 0.0),
    "1806": (("黑巧克力", "夹心巧克力"), 0.13, 0.0),
    "2009": (("NFC橙汁", "苹果汁"), 0.13, 0.0),
    "3304": (("精华液", "面霜", "口红", "防晒乳"), 0.13, 0.15),
    "3303": (("香水", "淡香水"), 0.13, 0.15),
    "3305": (("洗发水", "护发素"), 0.13, 0.0),
    "3306": (("牙膏", "电动牙刷刷头"), 0.13, 0.0),
    "3401": (("香皂", "沐浴露"), 0.13, 0.0),
    "9619": (("婴儿纸尿裤", "拉拉裤"), 0.13, 0.0),
    "4202": (("双肩包", "手提包"), 0.13, 0.0),
    "6110": (("羊绒衫", "针织开衫"), 0.13, 0.0),
    "6403": (("皮鞋", "运动鞋"), 0.13, 0.0),
    "8509": (("破壁料理机", "榨汁机"), 0.13, 0.0),
    "8516": (("吹风机", "电热水壶"), 0.13, 0.0),
    "9102": (("机械腕表", "石英手表"), 0.13, 0.2),
    "2204": (("红葡萄酒", "起泡酒"), 0.13, 0.1),
    "2208": (("威士忌", "白兰地"), 0.13, 0.3),
    "7113": (("金项链", "铂金戒指"), 0.13, 0.1),
    "9503": (("拼装积木", "毛绒玩具"), 0.13, 0.0),
}
#: Headings filed as products but absent from the positive list.
NOT_POSITIVE_HEADINGS: dict[str, tuple[str, float, float]] = {
    "8703": ("小型乘用车", 0.13, 0.05),
    "4403": ("原木", 0.09, 0.0),
    "8711": ("摩托车", 0.13, 0.1),
}
#: Prohibited HS codes inside a positive heading, and prohibited headings outside the list.
PROHIBITED_INSIDE: dict[str, tuple[str, str]] = {
    "12119039": ("1211", "濒危植物药材"),
    "30049059": ("3004", "含麻黄碱制剂"),
}
PROHIBITED_OUTSIDE: dict[str, str] = {"9301": "军用武器", "2939": "生物碱制品"}

#: The kind of a bad product and what it fails (PRODUCT_NOT_FILED covers the first four).
BAD_PRODUCT_KINDS = (
    "unfiled",
    "revoked",
    "expired",
    "not_yet_valid",
    "not_positive",
    "prohibited_inside",
    "prohibited_outside",
)


def credit_code(rng: np.random.Generator, area: str) -> str:
    """An 18-character unified social credit code with its GB 32100 check character."""
    body = "91" + area + "".join(CODE_CHARS[i] for i in rng.integers(0, 31, 9))
    total = sum(CODE_CHARS.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return body + CODE_CHARS[(31 - total % 31) % 31]


@dataclass
class Catalog:
    """Enterprise and product filings plus the HS lists, with indexes for injection.

    `good[role]`: codes of clean parties for that role. `bad[(rule, role)]`: codes that make a
    party of that role fail `rule` and nothing else. `products_good[e]` / `products_bad[e]`:
    item numbers of ebc `e` (index into `good["ebc"]`); rates by (ebc, item_no) live in the
    products frame.
    """

    year: int
    enterprises: pl.DataFrame
    products: pl.DataFrame
    hs_lists: pl.DataFrame
    good: dict[str, list[str]]
    bad: dict[tuple[Rule, str], list[str]]
    names: dict[str, str]
    good_products: int
    product_item_no: np.ndarray = field(repr=False)  # (ebc, slot) -> item_no
    product_vat: np.ndarray = field(repr=False)
    product_ct: np.ndarray = field(repr=False)
    product_name: np.ndarray = field(repr=False)
    id_shift: int = 0  # seed-dependent offset of the people numbering (see people.py)


class _Codes:
    """Unique 10-character customs enterprise codes: 4-digit customs area + 6 characters."""

    def __init__(self, rng: np.random.Generator) -> None:
        """Codes drawn from `rng`."""
        self.rng = rng
        self.seen: set[str] = set()

    def new(self) -> str:
        """A code not handed out before."""
        while True:
            area = CUSTOMS_AREAS[int(self.rng.integers(0, len(CUSTOMS_AREAS)))]
            kind = "9W6"[int(self.rng.integers(0, 3))]
            tail = "".join(CODE_CHARS[i] for i in self.rng.integers(0, 31, 5))
            code = area + kind + tail
            if code not in self.seen:
                self.seen.add(code)
                return code


def _ts(year: int, month: int = 1, day: int = 1) -> datetime:
    """Midnight of that day in Asia/Shanghai."""
    return datetime(year, month, day, tzinfo=CHINA)


def build_catalog(
    rng: np.random.Generator,
    year: int,
    *,
    platforms: int = 6,
    ebcs: int = 40,
    pay_companies: int = 5,
    logistics: int = 8,
    agents: int = 6,
    products_per_ebc: int = 30,
) -> Catalog:
    """Enterprises (clean and rule-failing), products per ebc, and the HS lists."""
    codes = _Codes(rng)
    rows: list[dict[str, object]] = []
    good: dict[str, list[str]] = {r: [] for r in ("ebp", "ebc", "pay", "logistics", "agent")}
    bad: dict[tuple[Rule, str], list[str]] = {}
    names: dict[str, str] = {}
    label = {
        "ebp": "跨境电商平台",
        "ebc": "国际贸易",
        "pay": "支付服务",
        "logistics": "国际物流",
        "agent": "报关代理",
    }

    def add(
        roles: list[str],
        credit: str,
        status: str,
        valid_from: datetime | None,
        valid_to: datetime | None,
        filed: bool = True,
    ) -> str:
        """A new enterprise code; filed (a row in the table) unless `filed` is False."""
        code = codes.new()
        name = f"{code[:4]}{label[roles[0]]}有限公司{len(rows) + 1}"
        names[code] = name
        if filed:
            rows.append(
                {
                    "code": code,
                    "credit_code": credit_code(rng, code[:4] + "00"),
                    "name": name,
                    "roles": ",".join(roles),
                    "credit_class": credit,
                    "status": status,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                }
            )
        return code

    counts = {
        "ebp": platforms,
        "ebc": ebcs,
        "pay": pay_companies,
        "logistics": logistics,
        "agent": agents,
    }
    for role, count in counts.items():
        for i in range(count):
            roles = [role]
            if role == "ebp" and i == 0:
                roles.append("ebc")  # a self-operated platform also sells
            if role == "agent" and i == 0:
                roles.insert(0, "logistics")  # a carrier that also declares
            credit = "advanced" if rng.random() < 0.3 else "general"
            start = _ts(year - 1 - int(rng.integers(0, 8)), int(rng.integers(1, 13)))
            end = None if rng.random() < 0.6 else _ts(year + 1 + int(rng.integers(0, 5)))
            good[role].append(add(roles, credit, "active", start, end))
    since = _ts(year - 3)
    for role in INJECTABLE_ROLES:
        bad[(Rule.ENTERPRISE_NOT_FILED, role)] = [
            add([role], "general", "active", since, None, filed=False),
            add(["ebc"] if role != "ebc" else ["pay"], "general", "active", since, None),
        ]
        bad[(Rule.ENTERPRISE_INACTIVE, role)] = [
            add([role], "general", "abnormal", since, None),
            add([role], "general", "revoked", since, None),
            add([role], "general", "active", since, _ts(year)),  # expired before the year
            add([role], "general", "active", _ts(year + 1), None),  # not yet valid
        ]
        bad[(Rule.ENTERPRISE_DISHONEST, role)] = [add([role], "dishonest", "active", since, None)]
    enterprises = pl.DataFrame(
        rows,
        schema={
            "code": pl.String,
            "credit_code": pl.String,
            "name": pl.String,
            "roles": pl.String,
            "credit_class": pl.String,
            "status": pl.String,
            "valid_from": pl.Datetime("us", "Asia/Shanghai"),
            "valid_to": pl.Datetime("us", "Asia/Shanghai"),
        },
    )
    # The rows went in role by role; shuffle so the file does not reveal the purpose.
    enterprises = enterprises.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))
    enterprises = _mixed_case(enterprises, ("roles", "credit_class", "status"))
    products, item_no, vat, ct, product_name = _products(rng, year, good["ebc"], products_per_ebc)
    return Catalog(
        year,
        enterprises,
        products,
        _hs_lists(),
        good,
        bad,
        names,
        products_per_ebc,
        item_no,
        vat,
        ct,
        product_name,
        int(rng.integers(0, 2**31)),
    )


def _hs_code(rng: np.random.Generator, prefix: str) -> str:
    """A 10-digit HS code under `prefix`."""
    tail = "".join(str(d) for d in rng.integers(0, 10, 10 - len(prefix) - 2))
    return prefix + tail + ("00", "90", "99")[int(rng.integers(0, 3))]


def _products(
    rng: np.random.Generator, year: int, ebcs: list[str], per_ebc: int
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Product filings: `per_ebc` clean products per ebc, then one of each BAD_PRODUCT_KINDS.

    Returns the frame and (ebc, slot) arrays of item_no, VAT, consumption-tax rate and name, where
    slots [0, per_ebc) are clean and the following slots follow BAD_PRODUCT_KINDS.
    """
    headings = list(GOOD_HEADINGS)
    slots = per_ebc + len(BAD_PRODUCT_KINDS)
    item_no = np.empty((len(ebcs), slots), dtype=object)
    vat = np.zeros((len(ebcs), slots))
    ct = np.zeros((len(ebcs), slots))
    product_name = np.empty((len(ebcs), slots), dtype=object)
    rows: list[dict[str, object]] = []
    since = _ts(year - 2)
    for e, ebc in enumerate(ebcs):
        for slot in range(slots):
            item = f"SKU{e:03d}{slot:02d}{int(rng.integers(0, 10_000)):04d}"
            item_no[e, slot] = item
            status, start, end = "active", since, None
            kind = BAD_PRODUCT_KINDS[slot - per_ebc] if slot >= per_ebc else "good"
            if kind in ("good", "unfiled", "revoked", "expired", "not_yet_valid"):
                heading = headings[int(rng.integers(0, len(headings)))]
                names_, v, c = GOOD_HEADINGS[heading]
                name = names_[int(rng.integers(0, len(names_)))]
                hs = _hs_code(rng, heading)
            elif kind == "not_positive":
                heading = list(NOT_POSITIVE_HEADINGS)[e % len(NOT_POSITIVE_HEADINGS)]
                name, v, c = NOT_POSITIVE_HEADINGS[heading]
                hs = _hs_code(rng, heading)
            elif kind == "prohibited_inside":
                prefix = list(PROHIBITED_INSIDE)[e % len(PROHIBITED_INSIDE)]
                name, v, c = PROHIBITED_INSIDE[prefix][1], 0.13, 0.0
                hs = _hs_code(rng, prefix)
            else:
                prefix = list(PROHIBITED_OUTSIDE)[e % len(PROHIBITED_OUTSIDE)]
                name, v, c = PROHIBITED_OUTSIDE[prefix], 0.13, 0.0
                hs = _hs_code(rng, prefix)
            status = "revoked" if kind == "revoked" else "active"
            end = _ts(year) if kind == "expired" else end
            start = _ts(year + 1) if kind == "not_yet_valid" else start
            vat[e, slot], ct[e, slot], product_name[e, slot] = v, c, name
            if kind == "unfiled":
                continue  # sold but never filed: the item_no is absent from products
            rows.append(
                {
                    "ebc_code": ebc,
                    "item_no": item,
                    "hs_code": hs,
                    "item_record_no": f"I{e:03d}{slot:03d}{year % 100:02d}",
                    "name": name,
                    "vat_rate": v,
                    "consumption_tax_rate": c,
                    "status": status,
                    "valid_from": start,
                    "valid_to": end,
                }
            )
    frame = pl.DataFrame(
        rows,
        schema={
            "ebc_code": pl.String,
            "item_no": pl.String,
            "hs_code": pl.String,
            "item_record_no": pl.String,
            "name": pl.String,
            "vat_rate": pl.Float64,
            "consumption_tax_rate": pl.Float64,
            "status": pl.String,
            "valid_from": pl.Datetime("us", "Asia/Shanghai"),
            "valid_to": pl.Datetime("us", "Asia/Shanghai"),
        },
    )
    return _mixed_case(frame, ("status",)), item_no, vat, ct, product_name


def _hs_lists() -> pl.DataFrame:
    """Positive prefixes (clean headings, two more specific codes, the prohibited-inside
    headings) and prohibited prefixes."""
    positive = list(GOOD_HEADINGS) + [h for h, _ in PROHIBITED_INSIDE.values()]
    positive += ["04022100", "330499"]  # longer prefixes inside clean headings
    prohibited = list(PROHIBITED_INSIDE) + list(PROHIBITED_OUTSIDE)
    return pl.DataFrame(
        {
            "hs_prefix": positive + prohibited,
            "list": ["positive"] * len(positive) + ["prohibited"] * len(prohibited),
        }
    ).pipe(_mixed_case, ("list",))


def _mixed_case(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Every fifth row's enumerated values upper-cased: SPEC reads enums case-insensitively."""
    upper = (pl.int_range(pl.len()) % 5) == 4
    return frame.with_columns(
        pl.when(upper).then(pl.col(c).str.to_uppercase()).otherwise(pl.col(c)).alias(c)
        for c in columns
    )
