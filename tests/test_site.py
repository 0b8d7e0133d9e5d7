"""The rendered site (`make site`, issue 7 §2), and the `$` test on the executed notebooks.

A session fixture builds the site once with `build_site`, the function `make site` runs (docs/build_site.py), into a
temporary folder. Then: every notebook and reference page has a page; the executed notebooks ran without an error
and none of their markdown cells or Markdown outputs holds a `$…$` pair that JupyterLab would typeset as math; and
every page, opened in headless Chromium (/usr/bin/chromium, as in test_browser.py: skipped locally without it, a
failure under CI), loads without a console error or a request leaving the machine, draws every plotly figure with
data, loads plotly.js exactly once, and shows no raw Markdown table, `{…}` placeholder or typeset math.
"""

from __future__ import annotations

import contextlib
import doctest
import functools
import http.server
import importlib.util
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

from notebook_text import NOTEBOOKS, markdown_outputs, math_pairs, source

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PAGES = [f"notebooks/{p.stem}" for p in NOTEBOOKS]
REQUIRED_DOC_PAGES = ["docs/index", "docs/model-assumptions", "docs/instructor-notes", "docs/learner-setup"]
DOC_PAGES = sorted({*REQUIRED_DOC_PAGES, *(f"docs/{p.stem}" for p in (ROOT / "docs").glob("*.md"))})
FIGURES_DRAWN_S = 20

# Everything a page shows, read in the browser after its scripts ran. Prose is every text node outside code, scripts,
# styles and figures (SVG), so a raw table or a placeholder in an output table is caught too.
PAGE_REPORT_JS = """
() => {
  const figures = [...document.querySelectorAll('.plotly-graph-div')].map(gd => {
    const box = gd.getBoundingClientRect();
    return {id: gd.id, drawn: gd.classList.contains('js-plotly-plot'), traces: (gd.data || []).length,
            svg: !!gd.querySelector('svg.main-svg'), width: Math.round(box.width), height: Math.round(box.height)};
  });
  const scripts = [...document.scripts];
  const skip = 'pre, code, script, style, svg, textarea';
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.textContent.trim() && !node.parentElement.closest(skip)) texts.push(node.textContent);
  }
  return {
    figures,
    plotlyScripts: scripts.filter(s => /plotly(\\.min)?\\.js/.test(s.src)).map(s => s.src),
    inlinePlotly: scripts.filter(s => !s.src && s.text.includes('plotly.js v')).length,
    plotlyGlobal: typeof window.Plotly,
    math: document.querySelectorAll(
      'mjx-container, .MathJax, .katex, .math, script[src*="mathjax" i], script[src*="katex" i]').length
      + (window.MathJax ? 1 : 0),
    widgets: document.querySelectorAll('script[type^="application/vnd.jupyter.widget"]').length,
    texts,
    text: (document.querySelector('main') || document.body).innerText,
  };
}
"""

FIGURES_SETTLED_JS = """
() => [...document.querySelectorAll('.plotly-graph-div')].every(gd => gd.querySelector('svg.main-svg'))
"""

_RAW_TABLE = re.compile(r"\|\s*:?-{3}|^\s*\|\s", re.MULTILINE)
_PLACEHOLDER = re.compile(
    r"\{(?:facts|assume|scenarios|checks|clients)\b|\{[A-Za-z_][\w.]*(?:\[[^\]]*\]|\([^)]*\))*(?:![rsa])?(?::[^{}]*)?\}"
)


def _load_build_module() -> ModuleType:
    """docs/build_site.py, the module `make site` runs (it is a script, not part of the aurora_sim package)."""
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "docs" / "build_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_module() -> ModuleType:
    return _load_build_module()


@pytest.fixture(scope="session")
def site(build_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole site, built once per session exactly as `make site` builds it, into a temporary folder."""
    result = build_module.build_site(tmp_path_factory.mktemp("site-build"))
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"\nsite built in {result.site} ({seconds})")
    return result


# -- the build and its pages ------------------------------------------------------------------------------------


def test_every_notebook_and_reference_page_has_a_page(site: Any) -> None:
    missing = [page for page in NOTEBOOK_PAGES + REQUIRED_DOC_PAGES if not (site.site / f"{page}.html").is_file()]
    assert not missing, f"pages missing from {site.site}: {missing}"
    assert set(site.pages) >= set(NOTEBOOK_PAGES + REQUIRED_DOC_PAGES)
    assert "docs/index.html" in (site.site / "index.html").read_text(encoding="utf-8"), (
        "the site's root index.html should send the reader to the landing page, docs/index.html"
    )


def test_the_landing_page_links_every_notebook(site: Any) -> None:
    # The page's own list, not the sidebar's table of contents, which links every page whatever the list says.
    content = (site.site / "docs" / "index.html").read_text(encoding="utf-8").split('id="the-notebooks"', 1)[-1]
    content = content.split('id="reference"', 1)[0]
    unlinked = [page for page in NOTEBOOK_PAGES if f'href="../{page}.html"' not in content]
    assert not unlinked, f"docs/index.md does not link {unlinked}: add them to its list of notebooks"


def test_sphinx_builds_without_warnings(site: Any) -> None:
    """A warning is a broken link, a bad heading or a page left out of the table of contents."""
    assert not site.sphinx_warnings, "sphinx-build warned:\n" + "\n".join(site.sphinx_warnings)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_without_error(site: Any, path: Path) -> None:
    errors = site.errors.get(path.name, [])
    assert not errors, f"notebooks/{path.name} shows an error on its page:\n" + "\n".join(errors)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_dollar_math_in_executed_notebook(site: Any, path: Path) -> None:
    """Markdown cells and Markdown outputs (summaries, checker messages, hints) write amounts as USD 0.06."""
    nb = nbformat.read(site.executed / path.name, as_version=4)
    found = [f"markdown cell {i}: {pair!r}" for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
             for pair in math_pairs(source(cell))]  # fmt: skip
    found += [f"Markdown output of cell {i}: {pair!r}" for i, text in markdown_outputs(nb) for pair in math_pairs(text)]
    assert not found, f"notebooks/{path.name} after Run All: unescaped $…$ pairs:\n" + "\n".join(found)


# -- the machinery, on made-up outputs (no build needed) --------------------------------------------------------


def test_a_plotly_output_becomes_a_div_without_plotly_js(build_module: ModuleType) -> None:
    output = nbformat.v4.new_output(
        "display_data", data={build_module.PLOTLY_MIME: {"data": [{"type": "bar", "y": [1, 2]}], "layout": {}}}
    )
    [converted] = build_module.convert_outputs([output], {})
    page = converted["data"]["text/html"]
    assert "Plotly.newPlot" in page and 'class="plotly-graph-div"' in page
    assert "plotly.js v" not in page and len(page) < 5000, "a figure must not carry its own copy of plotly.js"


def test_a_panel_becomes_a_note_with_its_settings_and_figure(build_module: ModuleType) -> None:
    """The FigureWidget's binary arrays (base64 buffers in the saved state) come back as the figure's data."""
    state = {
        "panel": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_figure"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"description": "sale requests/s", "value": 48.0}},
        "figure": {
            "model_name": "AnyModel",
            "state": {"_anywidget_id": "plotly.graph_objs._figurewidget.FigureWidget",
                      "_widget_data": [{"type": "scatter", "y": {"dtype": "float64", "shape": [2]}}],
                      "_widget_layout": {"height": 300}},
            "buffers": [{"path": ["_widget_data", 0, "y", "buffer"], "encoding": "base64",
                         "data": "AAAAAAAA8D8AAAAAAAAAQA=="}],  # float64 [1.0, 2.0]
        },
    }  # fmt: skip
    view = nbformat.v4.new_output("display_data", data={build_module.WIDGET_VIEW_MIME: {"model_id": "panel"}})
    note, figure = build_module.convert_outputs([view], state)
    note_html = note["data"]["text/html"]
    assert "make lab" in note_html and "sale requests/s <strong>48</strong>" in note_html
    assert "Plotly.newPlot" in figure["data"]["text/html"]
    assert '"bdata"' in figure["data"]["text/html"] or "[1.0,2.0]" in figure["data"]["text/html"]


def test_build_module_doctests(build_module: ModuleType) -> None:
    assert doctest.testmod(build_module).failed == 0


def test_the_page_checks_bite() -> None:
    """A raw table, a placeholder, typeset math, a figure without data and a second plotly.js are each caught."""
    good = {"plotlyScripts": ["/_static/plotly.min.js"], "inlinePlotly": 0, "plotlyGlobal": "object", "math": 0,
            "widgets": 0,
            "figures": [{"id": "f", "drawn": True, "traces": 3, "svg": True, "width": 700, "height": 480}],
            "texts": ["Costs USD 0.06 per hour.", "{'stringValue': 'Ana'}"]}  # fmt: skip
    assert _page_problems(good) == []
    bad = [
        {"texts": ["| rung | ACU |\n|---|---|\n| 1 | 2 |"]},
        {"texts": ["about {facts.GB_PER_ACU} GB"]},
        {"texts": ["1.92∗∗insteadof0.90"]},
        {"math": 1},
        {"figures": [{"id": "f", "drawn": True, "traces": 0, "svg": False, "width": 700, "height": 0}]},
        {"plotlyScripts": ["/_static/plotly.min.js", "https://cdn.plot.ly/plotly.min.js"]},
        {"inlinePlotly": 1},
        {"plotlyGlobal": "undefined"},
    ]
    for change in bad:
        assert _page_problems({**good, **change}), f"not caught: {change}"


# -- every page in Chromium -------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(site: Any) -> Iterator[str]:
    """The built site over HTTP on a free loopback port, as a reader's browser would fetch it."""
    handler = functools.partial(_QuietHandler, directory=str(site.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _open(browser: Any, base_url: str, page_name: str, shots: Path) -> tuple[dict, list[str]]:
    """Load one page; its report (PAGE_REPORT_JS) and what is wrong with it: console errors, requests to other hosts
    and the broken rules `_page_problems` finds (a failing page is saved as a screenshot in `shots`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(base_url) or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:  # the site must work offline: nothing may come from another host
            problems.append(f"request leaving the site: {url}")
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        page.goto(f"{base_url}/{page_name}.html", wait_until="load")
        with contextlib.suppress(Exception):  # a figure that never draws is reported below, with the others
            page.wait_for_function(FIGURES_SETTLED_JS, timeout=FIGURES_DRAWN_S * 1000, polling=200)
        report = page.evaluate(PAGE_REPORT_JS)
        problems += _page_problems(report)
        if problems:
            shot = shots / f"{page_name.replace('/', '-')}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot}")
        return report, problems
    finally:
        context.close()


def _page_problems(report: dict) -> list[str]:
    """Every rule a rendered page must keep, as readable complaints."""
    problems = []
    if report["plotlyGlobal"] != "object":  # an AMD loader (require.js) present before plotly.js hides the global
        problems.append(f"window.Plotly is {report['plotlyGlobal']}, so no figure can draw")
    if len(report["plotlyScripts"]) != 1 or report["inlinePlotly"]:
        problems.append(f"plotly.js must load exactly once: scripts {report['plotlyScripts']}, "
                        f"{report['inlinePlotly']} inline copies")  # fmt: skip
    for figure in report["figures"]:
        if not (figure["drawn"] and figure["traces"] > 0 and figure["svg"] and figure["width"] > 100):
            problems.append(f"figure {figure['id']} not drawn with data: {figure}")
    if report["math"]:
        problems.append(f"{report['math']} math element(s) (MathJax/KaTeX): a $ became math")
    if report["widgets"]:
        problems.append(f"{report['widgets']} widget view(s) left on the page (they need a kernel)")
    for text in report["texts"]:
        flat = " ".join(text.split())[:160]
        if _RAW_TABLE.search(text):
            problems.append(f"raw Markdown table text: {flat!r}")
        if "**" in text or "∗∗" in text:
            problems.append(f"unrendered bold or a math glitch: {flat!r}")
        if _PLACEHOLDER.search(text):
            problems.append(f"a {{…}} placeholder: {flat!r}")
    return problems


def _figures_in(prepared: Path) -> int:
    """How many figures the prepared notebook's outputs draw (each a plotly-graph-div)."""
    nb = nbformat.read(prepared, as_version=4)
    return sum(str(output.get("data", {}).get("text/html", "")).count('class="plotly-graph-div"')
               for cell in nb.cells for output in cell.get("outputs", []))  # fmt: skip


@pytest.mark.browser
@pytest.mark.parametrize("page_name", NOTEBOOK_PAGES + DOC_PAGES)
def test_page_renders_in_chromium(
    site: Any, chromium: Any, site_url: str, page_name: str, tmp_path: Path
) -> None:
    start = time.perf_counter()
    report, problems = _open(chromium, site_url, page_name, tmp_path)
    if page_name.startswith("notebooks/"):
        if "Run this notebook live" not in report["text"] or "make lab" not in report["text"]:
            problems.append("no note under the title saying how to run the notebook live (make lab)")
        expected = _figures_in(site.source / f"{page_name}.ipynb")
        if len(report["figures"]) != expected:
            problems.append(f"{len(report['figures'])} figures on the page, {expected} in the notebook's outputs")
    elapsed = time.perf_counter() - start
    assert not problems, f"{page_name}.html ({elapsed:.1f} s):\n" + "\n".join(problems)
