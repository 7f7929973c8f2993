"""Synthetic people: Chinese names, mobile phones, addresses and resident ID numbers.

Every function draws from a numpy Generator and returns whole columns (Polars Series), so a
million people cost a few vectorised operations. Resident IDs follow GB 11643 (area code, real
birth date, sequence, check character).
"""

from __future__ import annotations

import numpy as np
import polars as pl

SURNAMES = (
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 "
    "彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 "
    "石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 邱 江 尹 薛 闫 段 雷 侯 龙 史 陶 黎 贺 顾 毛 郝 龚 邵 "
    "万 钱 严 覃 武 戴 莫 孔 向 汤 欧阳 司马 上官"
).split()
GIVEN_CHARS = (
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 萍 红 鹏 辉 建 "
    "文 斌 宇 浩 凯 健 俊 帆 帅 旭 宁 龙 林 欣 佳 雪 婷 倩 颖 琳 晨 思 雨 梓 涵 子 轩 博 一 诺 "
    "嘉 怡 晓 海 波 春 梅 兰 慧 亮 成 志 国 荣 丹 飞 峰 新 瑶 璐 昊 然 悦 彤 可 心 泽 睿 铭 安"
).split()
#: (6-digit administrative area code, province, city, district) of real county-level areas.
AREAS = (
    ("110101", "北京市", "北京市", "东城区"),
    ("110105", "北京市", "北京市", "朝阳区"),
    ("110108", "北京市", "北京市", "海淀区"),
    ("120101", "天津市", "天津市", "和平区"),
    ("310101", "上海市", "上海市", "黄浦区"),
    ("310104", "上海市", "上海市", "徐汇区"),
    ("310115", "上海市", "上海市", "浦东新区"),
    ("320102", "江苏省", "南京市", "玄武区"),
    ("320506", "江苏省", "苏州市", "吴中区"),
    ("330102", "浙江省", "杭州市", "上城区"),
    ("330106", "浙江省", "杭州市", "西湖区"),
    ("330203", "浙江省", "宁波市", "海曙区"),
    ("340104", "安徽省", "合肥市", "蜀山区"),
    ("350203", "福建省", "厦门市", "思明区"),
    ("360102", "江西省", "南昌市", "东湖区"),
    ("370202", "山东省", "青岛市", "市南区"),
    ("410105", "河南省", "郑州市", "金水区"),
    ("420102", "湖北省", "武汉市", "江岸区"),
    ("430102", "湖南省", "长沙市", "芙蓉区"),
    ("440103", "广东省", "广州市", "荔湾区"),
    ("440106", "广东省", "广州市", "天河区"),
    ("440304", "广东省", "深圳市", "福田区"),
    ("440305", "广东省", "深圳市", "南山区"),
    ("500103", "重庆市", "重庆市", "渝中区"),
    ("510104", "四川省", "成都市", "锦江区"),
    ("610113", "陕西省", "西安市", "雁塔区"),
    ("210102", "辽宁省", "沈阳市", "和平区"),
    ("530102", "云南省", "昆明市", "五华区"),
)
STREETS = (
    "人民路 解放路 中山路 建设路 和平路 长江路 黄河路 南京路 青年路 文化路 "
    "学府路 科技路 新华路 胜利路 朝阳路 光明路 幸福路 滨江路 花园路 东风路"
).split()
MOBILE_PREFIXES = np.array(
    "130 131 132 133 135 136 137 138 139 150 151 152 155 157 158 159 166 177 180 181 182 "
    "185 186 187 188 189 191 199".split(),
    dtype=np.int64,
)

#: GB 11643 weights of the first 17 digits and the check characters by remainder.
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def pick(rng: np.random.Generator, values: tuple[str, ...] | list[str], n: int) -> pl.Series:
    """`n` values drawn uniformly from a small list of strings."""
    return pl.Series(list(values), dtype=pl.String).gather(rng.integers(0, len(values), n))


def digits(numbers: np.ndarray, width: int) -> pl.Series:
    """Non-negative integers as zero-padded decimal strings of `width` characters."""
    return pl.Series(numbers.astype(np.int64)).cast(pl.String).str.pad_start(width, "0")


def chinese_names(rng: np.random.Generator, n: int) -> pl.Series:
    """Surname plus one or two given-name characters."""
    first = pick(rng, GIVEN_CHARS, n)
    second = pick(rng, GIVEN_CHARS, n)
    two = pl.Series(rng.random(n) < 0.7)
    given = pl.select(pl.when(two).then(first + second).otherwise(first)).to_series()
    return pick(rng, SURNAMES, n) + given


def mobiles(rng: np.random.Generator, n: int) -> pl.Series:
    """11-digit mainland mobile numbers."""
    prefix = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), n)]
    return digits(prefix * 100_000_000 + rng.integers(0, 100_000_000, n), 11)


def addresses(rng: np.random.Generator, n: int) -> pl.Series:
    """Street addresses in the AREAS: province, city, district, street, number, flat."""
    area = rng.integers(0, len(AREAS), n)
    head = pl.Series([a[1] + a[2] + a[3] for a in AREAS]).gather(area)
    number = pl.Series(rng.integers(1, 999, n)).cast(pl.String)
    flat = pl.Series(rng.integers(101, 2999, n)).cast(pl.String)
    return head + pick(rng, STREETS, n) + number + "号" + flat + "室"


def check_characters(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check characters (ASCII codes) of an (n, 17) array of digit values."""
    return ID_CHECK[(first17.astype(np.int64) @ ID_WEIGHTS) % 11]


def _id_bytes(area: np.ndarray, birth_ymd: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """(n, 18) uint8 ASCII of resident IDs with a correct check character."""
    n = len(area)
    first17 = np.empty((n, 17), dtype=np.int64)
    for col, (value, width) in enumerate(((area, 6), (birth_ymd, 8), (sequence, 3))):
        start = (0, 6, 14)[col]
        for k in range(width):  # loop over digit positions, vectorised over people
            first17[:, start + k] = (value // 10 ** (width - 1 - k)) % 10
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :17] = first17 + ord("0")
    out[:, 17] = check_characters(first17)
    return out


def _bytes_to_series(rows: np.ndarray) -> pl.Series:
    """(n, width) uint8 ASCII rows -> String Series."""
    width = rows.shape[1]
    return pl.Series(np.ascontiguousarray(rows).view(f"S{width}").ravel()).cast(pl.String)


def birth_dates(rng: np.random.Generator, n: int, first_year: int, last_year: int) -> np.ndarray:
    """Real calendar dates as YYYYMMDD integers, uniform over the years given."""
    lo = np.datetime64(f"{first_year}-01-01", "D").astype(np.int64)
    hi = np.datetime64(f"{last_year}-12-31", "D").astype(np.int64)
    days = rng.integers(lo, hi + 1, n).astype("datetime64[D]")
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    months = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    return years * 10_000 + months * 100 + dom


def resident_ids(rng: np.random.Generator, n: int) -> pl.Series:
    """Valid 18-character resident IDs of adults (born 1950-2004)."""
    area = np.array([int(a[0]) for a in AREAS], dtype=np.int64)[rng.integers(0, len(AREAS), n)]
    birth = birth_dates(rng, n, 1950, 2004)
    return _bytes_to_series(_id_bytes(area, birth, rng.integers(1, 1000, n)))


def invalid_resident_ids(rng: np.random.Generator, n: int, order_year: int) -> pl.Series:
    """18-character IDs that fail GB 11643: wrong check character, impossible or future birth
    date (after `order_year`), or a letter among the digits. The kind cycles with the row."""
    area = np.array([int(a[0]) for a in AREAS], dtype=np.int64)[rng.integers(0, len(AREAS), n)]
    birth = birth_dates(rng, n, 1960, 2000)
    kind = np.arange(n) % 4
    impossible = (birth // 10_000) * 10_000 + np.where(rng.random(n) < 0.5, 230, 1341)
    future = (order_year + 1 + rng.integers(0, 3, n)) * 10_000 + 615
    birth = np.where(kind == 1, impossible, np.where(kind == 2, future, birth))
    rows = _id_bytes(area, birth, rng.integers(1, 1000, n))
    remainder = ((rows[:, :17].astype(np.int64) - ord("0")) @ ID_WEIGHTS) % 11
    wrong = ID_CHECK[(remainder + rng.integers(1, 11, n)) % 11]
    rows[:, 17] = np.where(kind == 0, wrong, rows[:, 17])
    rows[:, 16] = np.where(kind == 3, ord("A"), rows[:, 16])
    return _bytes_to_series(rows)


def passport_numbers(rng: np.random.Generator, n: int) -> pl.Series:
    """Passport-style numbers (letter plus 8 digits) for buyers with `buyer_id_type` 2."""
    return pick(rng, ("E", "G", "P"), n) + digits(rng.integers(0, 100_000_000, n), 8)


#: A prime above every capacity below, so `(SCRAMBLE * i + shift) % capacity` is a bijection.
SCRAMBLE = 1_000_000_007
BIRTH_FIRST, BIRTH_LAST = np.datetime64("1950-01-01"), np.datetime64("2004-12-31")


def unique_resident_ids(person: np.ndarray, shift: int) -> pl.Series:
    """Valid resident IDs, distinct for distinct `person` numbers (< about 5.6e8): the number
    is scrambled, then split into sequence, area and birth day, so no two people collide."""
    days = int((BIRTH_LAST - BIRTH_FIRST).astype(np.int64)) + 1
    capacity = 999 * len(AREAS) * days
    code = (person.astype(np.int64) * SCRAMBLE + shift) % capacity
    sequence, rest = code % 999 + 1, code // 999
    area = np.array([int(a[0]) for a in AREAS], dtype=np.int64)[rest % len(AREAS)]
    day = BIRTH_FIRST + (rest // len(AREAS)).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(day, unit="D"), "-", "").astype(np.int64)
    return _bytes_to_series(_id_bytes(area, ymd, sequence))


def unique_passport_numbers(person: np.ndarray, shift: int) -> pl.Series:
    """Passport-style numbers, distinct for distinct `person` numbers (< 1e8)."""
    code = (person.astype(np.int64) * SCRAMBLE + shift) % 100_000_000
    return "E" + digits(code, 8)


def real_dates(ymd: np.ndarray) -> np.ndarray:
    """Whether each YYYYMMDD integer is a real date of the proleptic Gregorian calendar."""
    year, month, day = ymd // 10_000, (ymd // 100) % 100, ymd % 100
    month_ok = (month >= 1) & (month <= 12) & (year >= 1) & (year <= 9999)
    first = (np.clip(year, 1, 9999) - 1970) * 12 + np.clip(month, 1, 12) - 1
    starts = first.astype("datetime64[M]").astype("datetime64[D]")
    length = ((first + 1).astype("datetime64[M]").astype("datetime64[D]") - starts).astype(np.int64)
    return month_ok & (day >= 1) & (day <= length)


def is_valid_resident_id(ids: pl.Series, order_ymd: np.ndarray | None = None) -> np.ndarray:
    """GB 11643 validity of each ID (18 ASCII characters, 17 digits, check character, real
    birth date not after `order_ymd`), computed independently of the engines."""
    text = ids.fill_null("")
    length_ok = (text.str.len_bytes() == 18).to_numpy()
    fixed = text.str.pad_end(18, "?").str.slice(0, 18).cast(pl.Binary).to_numpy()
    rows = np.frombuffer(b"".join(fixed), dtype=np.uint8) if len(fixed) else np.zeros(0, np.uint8)
    rows = rows.reshape(-1, 18) if length_ok.all() else _pad_rows(fixed)
    body = rows[:, :17].astype(np.int64) - ord("0")
    numeric = ((body >= 0) & (body <= 9)).all(axis=1)
    body = np.clip(body, 0, 9)
    check_ok = check_characters(body) == rows[:, 17]
    ymd = body[:, 6:14] @ (10 ** np.arange(7, -1, -1, dtype=np.int64))
    ok = length_ok & numeric & check_ok & real_dates(ymd)
    if order_ymd is not None:
        ok &= ymd <= order_ymd
    return ok


def _pad_rows(values: np.ndarray) -> np.ndarray:
    """Byte strings of any length -> (n, 18) uint8, cut or padded with '?'."""
    return np.frombuffer(
        b"".join(bytes(v)[:18].ljust(18, b"?") for v in values), dtype=np.uint8
    ).reshape(-1, 18)
