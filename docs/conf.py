"""Sphinx configuration of the workbook's site (`make site`; see docs/build_site.py, which copies this file next to
the pages it assembles, so every path here is relative to that source folder).

Offline by design: no theme, font or script comes from the internet at build time or in the reader's browser.
"""

from __future__ import annotations

project = "Aurora Serverless v1 best-practices workbook"
author = "the workbook's authors"
copyright = "the workbook's authors, MIT-0"

extensions = ["myst_nb"]
root_doc = "docs/index"  # the source folder mirrors the repository: docs/*.md, notebooks/*.ipynb
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# The notebooks arrive executed (docs/build_site.py runs each once); myst-nb only renders them.
nb_execution_mode = "off"
nb_merge_streams = True
# Markdown outputs (report.Summary, hints) are parsed like the cells, so their pipe tables become tables.
nb_render_markdown_format = "myst"
# Widget outputs are replaced by a note before the build; never fetch require.js or the widget manager from a CDN.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}

# `$` is a currency sign in this workbook, never math: no dollarmath, no amsmath, so MathJax is never loaded.
myst_enable_extensions: list[str] = []
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "Aurora Serverless v1 workbook"
html_static_path = ["_static"]
# plotly.js, copied from the installed plotly package by docs/build_site.py: loaded once per page, in <head>,
# before the figures' inline scripts call Plotly.newPlot.
html_js_files = ["plotly.min.js"]
# No copy of the sources in the site (2 MB): the notebooks live in the repository, where `make lab` runs them.
html_copy_source = False
html_show_sourcelink = False
# The figures are drawn for a light page; pydata-sphinx-theme also logs a console error when no mode is set.
html_context = {"default_mode": "light"}
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
}
