"""Report look: takeaways render as written in the HTML report (Markdown) and as wrapped text elsewhere."""
from __future__ import annotations

import mistune

from helpers import plots


def test_takeaway_renders_its_text_literally_and_numbered_actions_as_a_list():
    sentence = ("Segment Can't_Lose *them* <b> costs EUR 1,236 (5-95 %: -162 to 1,689) # of #1 [x]\n"
                "1. Send the 10% offer to About_to_Sleep\n2. Call the At Risk customers")
    html = mistune.html(plots.takeaway_markdown(sentence))
    assert "<p>Segment Can't_Lose *them* &lt;b&gt; costs EUR 1,236 (5-95 %: -162 to 1,689) # of #1 [x]</p>" in html
    assert "<ol>" in html and html.count("<li>") == 2 and "About_to_Sleep" in html


def test_say_outside_a_notebook_prints_the_sentence_wrapped(capsys):
    plots.say("word " * 40 + "\nsecond line", width=50)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 50 and lines[-1] == "second line"
