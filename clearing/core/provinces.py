"""The 31 provincial-level divisions of the mainland (GB/T 2260) and their names.

Each has its own feed topic; pages, statements and summaries show the name beside the code.
"""

from __future__ import annotations

# code -> (Chinese short name, English name), GB/T 2260 order.
NAMES: dict[str, tuple[str, str]] = {
    "110000": ("北京", "Beijing"),
    "120000": ("天津", "Tianjin"),
    "130000": ("河北", "Hebei"),
    "140000": ("山西", "Shanxi"),
    "150000": ("内蒙古", "Inner Mongolia"),
    "210000": ("辽宁", "Liaoning"),
    "220000": ("吉林", "Jilin"),
    "230000": ("黑龙江", "Heilongjiang"),
    "310000": ("上海", "Shanghai"),
    "320000": ("江苏", "Jiangsu"),
    "330000": ("浙江", "Zhejiang"),
    "340000": ("安徽", "Anhui"),
    "350000": ("福建", "Fujian"),
    "360000": ("江西", "Jiangxi"),
    "370000": ("山东", "Shandong"),
    "410000": ("河南", "Henan"),
    "420000": ("湖北", "Hubei"),
    "430000": ("湖南", "Hunan"),
    "440000": ("广东", "Guangdong"),
    "450000": ("广西", "Guangxi"),
    "460000": ("海南", "Hainan"),
    "500000": ("重庆", "Chongqing"),
    "510000": ("四川", "Sichuan"),
    "520000": ("贵州", "Guizhou"),
    "530000": ("云南", "Yunnan"),
    "540000": ("西藏", "Xizang"),
    "610000": ("陕西", "Shaanxi"),
    "620000": ("甘肃", "Gansu"),
    "630000": ("青海", "Qinghai"),
    "640000": ("宁夏", "Ningxia"),
    "650000": ("新疆", "Xinjiang"),
}

PROVINCES: tuple[str, ...] = tuple(NAMES)


def label(code: str) -> str:
    """`北京 Beijing 110000`; an unknown code is shown as it is."""
    names = NAMES.get(code)
    return f"{names[0]} {names[1]} {code}" if names else code


def english(code: str) -> str:
    """`Beijing (110000)`; an unknown code is shown as it is."""
    names = NAMES.get(code)
    return f"{names[1]} ({code})" if names else code


def as_json() -> list[dict[str, str]]:
    """The list the page draws its matrix axes from (every province, in code order)."""
    return [{"code": code, "zh": zh, "en": en} for code, (zh, en) in NAMES.items()]
