"""Regions: the home province of a mainland mobile number, as an ISO 3166-2:CN code (SPEC section 7).

Where a number belongs comes from libphonenumber's geocoding data (`phonenumbers.geocoder`), which names
the province (and often the city) of each mobile prefix block; this module only maps those names to the
ISO codes of China's 34 province-level divisions. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import geocoder


@dataclass(frozen=True)
class Province:
    code: str
    """ISO 3166-2:CN, e.g. `CN-GD`."""
    name: str
    """English name, as libphonenumber's geocoder writes it."""
    zh: str
    """Chinese short name, as the geocoder's Chinese descriptions begin."""


# The 34 province-level divisions (ISO 3166-2:CN, codes as revised in 2017). Data, not routing rules.
PROVINCES: tuple[Province, ...] = (
    Province("CN-AH", "Anhui", "安徽"),
    Province("CN-BJ", "Beijing", "北京"),
    Province("CN-CQ", "Chongqing", "重庆"),
    Province("CN-FJ", "Fujian", "福建"),
    Province("CN-GD", "Guangdong", "广东"),
    Province("CN-GS", "Gansu", "甘肃"),
    Province("CN-GX", "Guangxi", "广西"),
    Province("CN-GZ", "Guizhou", "贵州"),
    Province("CN-HA", "Henan", "河南"),
    Province("CN-HB", "Hubei", "湖北"),
    Province("CN-HE", "Hebei", "河北"),
    Province("CN-HI", "Hainan", "海南"),
    Province("CN-HK", "Hong Kong", "香港"),
    Province("CN-HL", "Heilongjiang", "黑龙江"),
    Province("CN-HN", "Hunan", "湖南"),
    Province("CN-JL", "Jilin", "吉林"),
    Province("CN-JS", "Jiangsu", "江苏"),
    Province("CN-JX", "Jiangxi", "江西"),
    Province("CN-LN", "Liaoning", "辽宁"),
    Province("CN-MO", "Macao", "澳门"),
    Province("CN-NM", "Inner Mongolia", "内蒙古"),
    Province("CN-NX", "Ningxia", "宁夏"),
    Province("CN-QH", "Qinghai", "青海"),
    Province("CN-SC", "Sichuan", "四川"),
    Province("CN-SD", "Shandong", "山东"),
    Province("CN-SH", "Shanghai", "上海"),
    Province("CN-SN", "Shaanxi", "陕西"),
    Province("CN-SX", "Shanxi", "山西"),
    Province("CN-TJ", "Tianjin", "天津"),
    Province("CN-TW", "Taiwan", "台湾"),
    Province("CN-XJ", "Xinjiang", "新疆"),
    Province("CN-XZ", "Tibet", "西藏"),
    Province("CN-YN", "Yunnan", "云南"),
    Province("CN-ZJ", "Zhejiang", "浙江"),
)
BY_CODE: dict[str, Province] = {p.code: p for p in PROVINCES}
REGION_CODES: frozenset[str] = frozenset(BY_CODE)
# Hong Kong, Macao and Taiwan numbers are not mainland (+86) numbers: no order ever has those regions.
MAINLAND: tuple[Province, ...] = tuple(p for p in PROVINCES if p.code not in ("CN-HK", "CN-MO", "CN-TW"))

_BY_NAME: dict[str, str] = {p.name.lower(): p.code for p in PROVINCES}
_BY_NAME.update({"macau": "CN-MO", "xizang": "CN-XZ", "nei mongol": "CN-NM"})
# Longest first, so that no short name shadows a longer one it begins.
_BY_ZH: tuple[tuple[str, str], ...] = tuple(
    sorted(((p.zh, p.code) for p in PROVINCES), key=lambda item: -len(item[0]))
)


def region_name(code: str | None) -> str:
    """`CN-GD` -> `Guangdong`; an unknown region is `unknown`."""
    p = BY_CODE.get(code or "")
    return p.name if p else "unknown"


def from_description(english: str, chinese: str = "") -> str | None:
    """The province of a geocoder description (`Dongguan, Guangdong` / `广东省东莞市`), or None when it
    names only the country (`China`) or nothing we know."""
    if english:
        code = _BY_NAME.get(english.rsplit(",", 1)[-1].strip().lower())
        if code is not None:
            return code
    for zh, code in _BY_ZH:
        if chinese.startswith(zh):
            return code
    return None


def region_of(national_number: str, parsed: phonenumbers.PhoneNumber | None = None) -> str | None:
    """The home province of a mainland mobile number (11 national digits), or None when the
    geocoding data places it nowhere more precise than China (e.g. MVNO and new blocks). `parsed`:
    the number already parsed, if the caller has it."""
    if parsed is None:
        try:
            parsed = phonenumbers.parse(national_number, "CN")
        except phonenumbers.NumberParseException:
            return None
    if parsed.country_code != 86:
        return None
    english = geocoder.description_for_number(parsed, "en")
    code = from_description(english)
    if code is not None:
        return code
    return from_description("", geocoder.description_for_number(parsed, "zh"))
