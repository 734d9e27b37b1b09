"""Where things live: the project root and a shop-month's folders.

Notebooks, the runner and tests may run from different working directories; every relative path
in parameters and config is taken from the project root (the folder holding pyproject.toml).
"""
from __future__ import annotations

from pathlib import Path


def project_root(start: str | Path | None = None) -> Path:
    """The folder holding pyproject.toml and src/helpers: searched upward from `start` (default: the
    working directory), then from this package's own location (an editable install)."""
    for base in ([Path(start)] if start else []) + [Path.cwd(), Path(__file__).resolve().parent]:
        base = base.resolve()
        for folder in (base, *base.parents):
            if (folder / "pyproject.toml").is_file() and (folder / "src" / "helpers").is_dir():
                return folder
    raise FileNotFoundError("no project folder (pyproject.toml with src/helpers) above the working "
                            "directory; run from inside the project or pass root= explicitly")


def resolve(path: str | Path) -> Path:
    """An absolute path; relative paths are taken from the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def shop_name(raw_dir: str | Path) -> str:
    """The shop is the raw folder's name: data/raw/demo -> 'demo'."""
    path = Path(raw_dir)
    name = path.name or path.resolve().name
    if not name or name in {".", ".."}:
        raise ValueError(f"cannot tell the shop from raw_dir {str(raw_dir)!r}; "
                         "pass the shop's folder, e.g. data/raw/demo")
    return name


def month_label(as_of: str) -> str:
    """'2026-06-30' -> '2026-06'."""
    return str(as_of)[:7]
