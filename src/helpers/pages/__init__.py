"""The stages' pages: takeaways, reader tables and figures drawn from each stage's typed result.

One module per stage (``helpers/pages/<stage>.py``), as lifetimes keeps every figure in plotting.py:
the computation lives in ``helpers/<stage>.py`` (``run(processed_dir, as_of, cfg, con=None)`` writes the
stage's declared artifacts and returns its result), and a page function takes that result and returns a
table, a sentence or the axes of a figure. Pages touch no engine and read no file: what a page needs,
the result carries.
"""
