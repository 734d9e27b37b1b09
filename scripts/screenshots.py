"""Screenshots of the published reports for review: reports/index.html and every report of a shop's
latest month, as full-page PNGs 1280 px wide, rendered with headless Chromium.

    .venv/bin/python scripts/screenshots.py [--reports reports] [--shop demo] [--month 2026-06]
                                           [--out docs/screenshots] [--only index 07_summary]

Writes <out>/index.png and <out>/NN_name.png (01_clean.png ... 07_summary.png). Each page is shot in a
tall window, the white space below its end cropped (PIL), and the PNG optimised; a page still above
--max-kb is reduced to 256 colours, which keeps text sharp. `make screenshots` runs this for the demo
shop. Chromium: Debian's `chromium` package (sudo apt-get install chromium), or set --chromium / $CHROMIUM.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

WIDTH = 1280
FIRST_HEIGHT = 6000  # the first window height tried; doubled while the page reaches the window's bottom
MAX_HEIGHT = 48000
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = ("Chromium not found: install it (Debian/Ubuntu: sudo apt-get install chromium) or pass "
           "--chromium /path/to/chromium (or set CHROMIUM), then run `make screenshots` again.")
# Headless Chromium as quiet as it gets: no sandbox (containers run as root), no GPU, no network chatter.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1",
         "--virtual-time-budget=8000")  # let the pages' scripts (sortable tables) finish before the shot


def find_chromium(given: str | None) -> str | None:
    if given:
        return shutil.which(given) or (given if Path(given).is_file() else None)
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def shoot(chromium: str, page: Path, png: Path, height: int) -> Image.Image:
    """One screenshot of ``page`` in a WIDTH x height window (a fresh profile each time)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
                        f"--screenshot={png}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=180)
    with Image.open(png) as img:
        return img.convert("RGB")


def content_bottom(img: Image.Image) -> int:
    """The row below the page's last non-white pixel (0 for a blank image)."""
    box = ImageChops.difference(img, Image.new("RGB", img.size, "white")).getbbox()
    return box[3] if box else 0


def full_page(chromium: str, page: Path, png: Path, margin: int = 32) -> Image.Image:
    """The whole page: a window tall enough to leave white space below the content, cropped to it."""
    height = FIRST_HEIGHT
    while True:
        img = shoot(chromium, page, png, height)
        bottom = content_bottom(img)
        if bottom < height - margin or height >= MAX_HEIGHT:
            return img.crop((0, 0, img.width, min(height, max(bottom + margin, 200))))
        height *= 2


def save_small(img: Image.Image, png: Path, max_kb: int) -> int:
    """Save an optimised PNG; above max_kb, in 256 colours. Returns the size in KB."""
    img.save(png, optimize=True)
    if png.stat().st_size > max_kb * 1024:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(png, optimize=True)
    return round(png.stat().st_size / 1024)


def pages(reports: Path, shop: str, month: str | None) -> list[tuple[str, Path]]:
    """(name, page) of the index and the month's reports; the latest month of the shop by default."""
    months = sorted(p.name for p in (reports / shop).glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if p.is_dir())
    month = month or (months[-1] if months else None)
    found = sorted((reports / shop / month).glob("[0-9][0-9]_*.html")) if month else []
    if not (reports / "index.html").is_file() or not found:
        sys.exit(f"No published reports for {shop} in {reports}/ (index.html and {shop}/<YYYY-MM>/NN_name.html): "
                 f"run `make report` first.")
    return [("index", reports / "index.html")] + [(p.stem, p) for p in found]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=Path, default=Path("reports"))
    ap.add_argument("--shop", default="demo")
    ap.add_argument("--month", help="YYYY-MM; default the shop's latest month in --reports")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--only", nargs="+", metavar="NAME", help="page names to shoot, e.g. index 07_summary")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM"), help="the browser (default: found on PATH)")
    ap.add_argument("--max-kb", type=int, default=600, help="PNGs above this size are reduced to 256 colours")
    args = ap.parse_args()

    chromium = find_chromium(args.chromium)
    if chromium is None:
        sys.exit(INSTALL)
    todo = [(name, page) for name, page in pages(args.reports, args.shop, args.month)
            if not args.only or name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, page in todo:
        png = args.out / f"{name}.png"
        img = full_page(chromium, page, png)
        kb = save_small(img, png, args.max_kb)
        print(f"{png}: {img.width} x {img.height} px, {kb} KB")


if __name__ == "__main__":
    main()
