"""What a reader of a rendered report page sees: its text without markup, styles and scripts."""
from __future__ import annotations

import html
import re
from pathlib import Path


def text(page: str | Path) -> str:
    """The visible text of an HTML report page, whitespace collapsed to single spaces."""
    raw = Path(page).read_text(encoding="utf-8")
    raw = re.sub(r"<(style|script)\b.*?</\1>", " ", raw, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw))).strip()
