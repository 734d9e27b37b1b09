"""What a reader of a rendered report page sees: its text without markup, styles and scripts."""
from __future__ import annotations

import copy
import functools
import html
import re
from pathlib import Path


def text(page: str | Path) -> str:
    """The visible text of an HTML report page, whitespace collapsed to single spaces."""
    raw = Path(page).read_text(encoding="utf-8")
    raw = re.sub(r"<(style|script)\b.*?</\1>", " ", raw, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw))).strip()


# --- what a reader meets first, and words meant for the analyst ----------------------------------------

# Where reader text ends: the method section at the bottom of a page (its file checks, rules and glossary)
METHOD_HEADINGS = ("How this page was made", "How this was worked out")
CONFIG_SECTIONS = ("shop", "engine", "columns", "cleaning", "business", "kpis", "segments", "clv", "churn", "winback",
                   "offers", "summary", "track", "reports")
_CONFIG_KEY = re.compile(rf"\b(?:{'|'.join(CONFIG_SECTIONS)})\.(?!(?:csv|parquet|json|html|yml)\b)[a-z_]+\b")
# a snake_case word that is not a file name the reader is told to open (winback_targets.csv)
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?!\.(?:csv|parquet|json|html|yml|ipynb))")
LIBRARY_WORDS = ("lifetimes", "sklearn", "scikit-learn", "DuckDB", "Ibis", "pandas", "papermill")
DATATABLES = "new ITable("
WEIGHT_LIMIT = 500_000  # bytes; a page holding a table over 100 rows (sortable, DataTables) may weigh more


_HEAVY = re.compile(r"<(style|script)\b.*?</\1>|(?<=src=\")data:[^\"]*", flags=re.S | re.I)


def _soup(page: str | Path):
    """The page parsed, without its styles, scripts and inline image data (what no check reads: a parse of a
    third of the bytes); a page file is parsed once per test session."""
    if isinstance(page, Path):
        return _file_soup(str(page), page.stat().st_mtime_ns)
    return _parse(page)


def _parse(raw: str):
    from bs4 import BeautifulSoup  # nbconvert's own dependency

    return BeautifulSoup(_HEAVY.sub("", raw), "html.parser")


@functools.lru_cache(maxsize=64)
def _file_soup(path: str, mtime_ns: int):
    return _parse(Path(path).read_text(encoding="utf-8"))


def first_output(page: str | Path) -> tuple[str, str]:
    """(kind, text) of the first output under the page's title: kind 'takeaway' for a computed sentence
    (Markdown output), 'table', 'figure' or 'text'."""
    soup = _soup(page)
    out = soup.select_one(".jp-OutputArea-output")
    if out is None:
        return "none", ""
    kind = ("takeaway" if "jp-RenderedMarkdown" in out.get("class", []) else "table" if out.find("table")
            else "figure" if out.find("img") else "text")
    return kind, re.sub(r"\s+", " ", out.get_text(" ")).strip()


def reader_text(page: str | Path) -> str:
    """The page's visible text a reader meets: up to the method section, without the "rests on" box."""
    soup = copy.copy(_soup(page))  # the cached parse stays whole for the other checks
    for box in soup.select(".rests-on"):
        box.decompose()
    for heading in soup.find_all(["h2"]):
        if any(heading.get_text().strip().startswith(h) for h in METHOD_HEADINGS):
            for later in list(heading.find_all_next()):
                later.extract()
            heading.extract()
            break
    return re.sub(r"\s+", " ", soup.get_text(" ")).strip()


def analyst_words(page: str | Path) -> list[str]:
    """Config keys, snake_case words and library names in reader text (they belong in the box or the glossary)."""
    text = reader_text(page)
    found = _CONFIG_KEY.findall(text) + _SNAKE.findall(_CONFIG_KEY.sub(" ", text))
    found += [w for w in LIBRARY_WORDS if re.search(rf"\b{re.escape(w)}\b", text)]
    return sorted(set(found))


def images_without_alt(page: str | Path) -> int:
    """How many images have no alt text of their own (none, empty, nbconvert's or our placeholder)."""
    bad = ("", "Chart", "No description has been provided for this image")
    return sum(1 for img in _soup(page).find_all("img") if (img.get("alt") or "").strip() in bad)


def over_weight(page: str | Path) -> bool:
    """Heavier than WEIGHT_LIMIT without a table over 100 rows to show for it."""
    raw = Path(page).read_text(encoding="utf-8") if isinstance(page, Path) else page
    return len(raw.encode("utf-8")) > WEIGHT_LIMIT and DATATABLES not in raw
