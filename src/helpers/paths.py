"""Where things live: the project root and a shop-month's folders.

Notebooks, the runner and tests may run from different working directories; every relative path
in parameters and config is taken from the project root (the folder holding pyproject.toml).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def project_root() -> Path:
    """The nearest folder above the working directory (or this package) holding pyproject.toml."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").exists() and (folder / "src" / "helpers").is_dir():
                return folder
    return Path.cwd()


def resolve(path: str | Path) -> Path:
    """An absolute path; relative paths are taken from the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def shop_name(raw_dir: str | Path) -> str:
    """The shop is the raw folder's name: data/raw/demo -> 'demo'."""
    return Path(str(raw_dir).rstrip("/\\")).name


def month_label(as_of: str) -> str:
    """'2026-06-30' -> '2026-06'."""
    return str(as_of)[:7]
