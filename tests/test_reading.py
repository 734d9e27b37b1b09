"""The pages as their readers meet them (issue 30): the answer first, in the reader's words, figures described
for those who cannot see them, light enough to mail. Checked on the demo month (the committed notebooks'
outputs, published as the runner publishes them) and on a second shop's month rendered in the test session.

Reader text is everything above a page's method section ("How this was worked out", "How this page was made"),
without the "what these numbers rest on" box: there a reader meets no config key, rule id, snake_case word or
library name. The method section below it is written for the analyst and may name them."""
import nbformat
import pytest

import pages
from helpers.paths import project_root
from helpers.publish import notebook_to_html

NOTEBOOKS = sorted(p.stem for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ANSWER_FIRST = NOTEBOOKS  # every page leads with its answer and keeps analyst words to the box and the method


@pytest.fixture(scope="module")
def demo_pages(tmp_path_factory) -> dict:
    """The demo month's pages, published from the committed notebooks (what nbval holds)."""
    out = tmp_path_factory.mktemp("demo-pages")
    found = {}
    for stem in NOTEBOOKS:
        nb = nbformat.read(str(project_root() / "notebooks" / f"{stem}.ipynb"), as_version=4)
        found[stem] = out / f"{stem}.html"
        found[stem].write_text(notebook_to_html(nb, f"demo · 2026-06 · {stem}"), encoding="utf-8")
    return found


def _page(month_pages, six_month_clv, shop: str, stem: str):
    return month_pages[stem] if shop == "demo" else six_month_clv.page_path(stem[:2])


@pytest.mark.parametrize("shop", ["demo", "smallshop"])
@pytest.mark.parametrize("stem", ANSWER_FIRST)
def test_a_page_opens_with_its_answer_in_this_months_numbers(demo_pages, six_month_clv, shop, stem):
    kind, text = pages.first_output(_page(demo_pages, six_month_clv, shop, stem))
    assert kind == "takeaway" and any(ch.isdigit() for ch in text), (kind, text[:200])


@pytest.mark.parametrize("shop", ["demo", "smallshop"])
@pytest.mark.parametrize("stem", ANSWER_FIRST)
def test_config_keys_rule_ids_and_library_names_stay_in_the_box_and_the_glossary(demo_pages, six_month_clv, shop, stem):
    assert pages.analyst_words(_page(demo_pages, six_month_clv, shop, stem)) == []


@pytest.mark.parametrize("shop", ["demo", "smallshop"])
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_figure_is_described_and_the_page_is_light_enough_to_mail(demo_pages, six_month_clv, shop, stem):
    page = _page(demo_pages, six_month_clv, shop, stem)
    assert pages.images_without_alt(page) == 0
    assert not pages.over_weight(page), f"{page.stat().st_size:,} bytes"


def test_the_reader_checks_catch_what_they_look_for():
    """The checks above can fail: a page that leads with a table, speaks in config keys and hides a figure."""
    page = ('<h1>t</h1><div class="jp-OutputArea-output"><table><tr><td>1</td></tr></table></div>'
            '<p>Raise summary.kpi_change; clv_at_risk fell (see winback_targets.csv)</p>'
            '<div class="rests-on">clv.gross_margin</div><img src="data:," alt="Chart">'
            '<h2>How this page was made</h2><p>track.error_band</p>')
    assert pages.first_output(page)[0] == "table"
    assert pages.analyst_words(page) == ["clv_at_risk", "summary.kpi_change"]
    assert pages.images_without_alt(page) == 1
