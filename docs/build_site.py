"""Build the workbook's static site into build/site/: `make site` (or `.venv/bin/python docs/build_site.py`).

Three steps, each a function that tests/test_site.py reuses through `build_site`:

1. execute every notebook once (nbclient, the `python3` kernel, two at a time) into build/executed/;
2. prepare each executed notebook for its page (build/site-source/notebooks/): a plotly figure becomes a div that
   draws with the page's one plotly.js; an interactive panel becomes a note (run it live with `make lab`), its
   controls' default values and its figure drawn statically; a header note says how to run the notebook live and
   where its panels are;
3. sphinx-build (myst-nb with execution off, sphinx-book-theme, docs/conf.py) over build/site-source/, which
   mirrors the repository (docs/*.md, notebooks/*.ipynb) so relative links keep working, into build/site/.

Everything comes from installed packages: the build and the pages need no network.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import html
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import plotly
import plotly.io as pio
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOK_DIR = ROOT / "notebooks"
BUILD = ROOT / "build"
# The reference pages after the landing page, in this order; any other docs/*.md page follows them.
DOC_ORDER = ("learner-setup", "model-assumptions", "instructor-notes")

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
CELL_TIMEOUT_S = 300
JOBS = 2


@dataclass
class SiteBuild:
    """What `build_site` made, where, how long it took and what went wrong.

    `errors` maps a notebook's file name to its error outputs ("cell 12: ValueError: …"): the site is built all the
    same, so a reader of the failing page sees the traceback, but `make site` exits non-zero.
    """

    executed: Path
    source: Path
    site: Path
    pages: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    sphinx_warnings: list[str] = field(default_factory=list)


# -- 1. execute -------------------------------------------------------------------------------------------------


def notebooks() -> list[Path]:
    """The workbook's notebooks, in their numbered order."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


async def _execute_one(path: Path, target: Path, slots: asyncio.Semaphore) -> float:
    """Run `path` top to bottom in its own folder, as JupyterLab would, and write it with outputs to `target`.

    A failing cell does not stop the run (its traceback is an output `error_outputs` finds); a kernel that dies or
    a cell that outlives CELL_TIMEOUT_S ends the run, and what ran so far is written with the failure appended.
    """
    async with slots:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )  # fmt: skip
        start = time.perf_counter()
        try:
            await client.async_execute()
        except Exception as error:  # any failure is recorded in the notebook and reported by the build
            nb.cells.append(nbformat.v4.new_code_cell(
                outputs=[nbformat.v4.new_output("error", ename=type(error).__name__, evalue=str(error)[:500],
                                                traceback=[])]))  # fmt: skip
        nbformat.write(nb, target)
        return time.perf_counter() - start


async def _execute_all(paths: list[Path], executed: Path, jobs: int) -> dict[str, float]:
    slots = asyncio.Semaphore(jobs)
    seconds = await asyncio.gather(*(_execute_one(p, executed / p.name, slots) for p in paths))
    return {p.name: s for p, s in zip(paths, seconds, strict=True)}


def execute_notebooks(paths: list[Path], executed: Path, jobs: int = JOBS) -> dict[str, float]:
    """Execute `paths` into the folder `executed`, `jobs` kernels at a time; the seconds each took, by file name."""
    executed.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_execute_all(paths, executed, jobs))


def error_outputs(nb: dict) -> list[str]:
    """One line per error output of an executed notebook: "cell 12: ValueError: …"."""
    return [f"cell {index}: {output.get('ename')}: {str(output.get('evalue'))[:300]}"
            for index, cell in enumerate(nb["cells"]) for output in cell.get("outputs", [])
            if output.get("output_type") == "error"]  # fmt: skip


# -- 2. prepare for the page ------------------------------------------------------------------------------------


def figure_html(figure: dict[str, Any]) -> str:
    """A plotly figure as a div and the script that draws it with the page's plotly.js (never a copy of it)."""
    config = {**figure.get("config", {}), **FIGURE_CONFIG}
    spec = {"data": figure.get("data", []), "layout": figure.get("layout", {})}
    return pio.to_html(spec, config=config, include_plotlyjs=False, full_html=False, validate=False,
                       default_height="480px")  # fmt: skip


def _html_output(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={"text/html": text})


def _widget_state(nb: dict) -> dict[str, dict]:
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state", {})


def _walk(model_id: str, state: dict[str, dict]) -> Iterator[dict]:
    """The model `model_id` and every widget inside it, in the order a page shows them."""
    model = state.get(model_id)
    if model is None:
        return
    yield model
    for child in model["state"].get("children", []):
        yield from _walk(str(child).removeprefix("IPY_MODEL_"), state)


def _is_figure(model: dict) -> bool:
    return str(model["state"].get("_anywidget_id", "")).endswith("FigureWidget")


def _figure_from_widget(model: dict) -> dict[str, Any]:
    """A FigureWidget's saved state as a figure: its binary arrays (saved as base64 buffers) put back in place."""
    state = copy.deepcopy(model["state"])
    for buffer in model.get("buffers", []):
        *parents, key = buffer["path"]
        node = state
        for step in parents[:-1]:
            node = node[step]
        spec = node[parents[-1]] if key == "buffer" else None
        if not isinstance(spec, dict) or "dtype" not in spec:
            continue  # not an array (no FigureWidget saves another kind of buffer)
        array = np.frombuffer(base64.b64decode(buffer["data"]), dtype=spec["dtype"])
        node[parents[-1]] = array.reshape(spec.get("shape", array.shape))
    return {"data": state.get("_widget_data", []), "layout": state.get("_widget_layout", {})}


def _control_setting(model: dict) -> str | None:
    """A control's setting as `minimum ACU <strong>1</strong>`; None for a widget that is not a control."""
    state = model["state"]
    description = str(state.get("description") or "").strip()
    if not description or model.get("model_name") in ("ButtonModel", "HTMLModel", "LabelModel"):
        return None
    labels, index = state.get("_options_labels"), state.get("index")
    if labels and isinstance(index, int) and 0 <= index < len(labels):
        value: object = labels[index]
    elif "value" in state:
        value = state["value"]
    else:
        return None
    if isinstance(value, float):
        value = f"{value:g}"
    return f"{html.escape(description)} <strong>{html.escape(str(value))}</strong>"


def panel_note(settings: list[str], figures: int) -> str:
    """The note that stands where a panel's controls would be on a live page.

    Example:
        >>> note = panel_note(["minimum ACU <strong>1</strong>"], 1)
        >>> "make lab" in note and "defaults (minimum ACU <strong>1</strong>), and the figure below" in note
        True
    """
    below = "the figure below shows" if figures == 1 else "the figures below show"
    text = "Its controls need a live Python kernel: run this notebook live with <code>make lab</code> to move them."
    if settings:
        text += f" Here they stand at their defaults ({' · '.join(settings)})"
        text += f", and {below} that run." if figures else "."
    elif figures:
        text += f" {below.capitalize()} the run with its default settings."
    return (
        '<div class="admonition note workbook-panel-note"><p class="admonition-title">Interactive panel</p>'
        f"<p>{text}</p></div>"
    )


def panel_outputs(model_id: str, state: dict[str, dict]) -> list[nbformat.NotebookNode]:
    """What a page shows instead of a widget: a lone FigureWidget as a figure; a panel as a note, its text and
    figures, and whatever its output areas hold."""
    models = list(_walk(model_id, state))
    if not models:
        return [_html_output(panel_note([], 0))]
    if _is_figure(models[0]):
        return [_html_output(figure_html(_figure_from_widget(models[0])))]
    settings = [s for s in map(_control_setting, models) if s]
    shown: list[nbformat.NotebookNode] = []
    for model in models:
        if _is_figure(model):
            shown.append(_html_output(figure_html(_figure_from_widget(model))))
        elif model.get("model_name") == "HTMLModel" and str(model["state"].get("value", "")).strip():
            shown.append(_html_output(str(model["state"]["value"])))
        elif model.get("model_name") == "OutputModel":
            inner = [nbformat.from_dict(o) for o in model["state"].get("outputs", [])]
            shown.extend(convert_outputs(inner, state))
    figures = sum(1 for m in models if _is_figure(m))
    return [_html_output(panel_note(settings, figures)), *shown]


def convert_outputs(outputs: list, state: dict[str, dict]) -> list[nbformat.NotebookNode]:
    """A cell's outputs as the page shows them: plotly → a drawn div, a widget → `panel_outputs`, others as they are."""
    converted = []
    for output in outputs:
        data = output.get("data", {})
        if PLOTLY_MIME in data:
            converted.append(_html_output(figure_html(data[PLOTLY_MIME])))
        elif WIDGET_VIEW_MIME in data:
            converted.extend(panel_outputs(data[WIDGET_VIEW_MIME]["model_id"], state))
        else:
            converted.append(output)
    return converted


def _is_panel(output: dict, state: dict[str, dict]) -> bool:
    view = output.get("data", {}).get(WIDGET_VIEW_MIME)
    root = state.get(view["model_id"]) if view else None
    return view is not None and not (root is not None and _is_figure(root))


def panel_sections(nb: dict) -> list[str]:
    """The headings under which the notebook shows an interactive panel, in order, each once."""
    state, heading, found = _widget_state(nb), "", []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("##"):
                    heading = line.lstrip("#").strip()
        elif any(_is_panel(o, state) for o in cell.get("outputs", [])) and heading and heading not in found:
            found.append(heading)
    return found


def header_note(name: str, sections: list[str]) -> str:
    """The note under a notebook page's title: what the page is and how to run the notebook live."""
    where = ", ".join(f"*{s}*" for s in sections)
    panels = (f"Its interactive panels are under {where}; " if sections
              else "It has no interactive panel; ")  # fmt: skip
    return (
        "```{admonition} Run this notebook live\n:class: tip\n\n"
        f"This page shows `notebooks/{name}` after one run with its default settings. {panels}"
        "to move their controls, change the code or solve the exercise, run it on your laptop: `make lab` in the "
        "workbook's folder opens JupyterLab, then open this notebook and choose *Run → Run All Cells*.\n```"
    )


def prepare_notebook(nb: dict, name: str) -> nbformat.NotebookNode:
    """An executed notebook ready for its page: outputs converted, the header note under the title, no widget state."""
    page = nbformat.from_dict(copy.deepcopy(nb))
    state = _widget_state(nb)
    for cell in page.cells:
        if cell.cell_type == "code":
            cell.outputs = convert_outputs(cell.outputs, state)
    page.metadata.pop("widgets", None)
    note = nbformat.v4.new_markdown_cell(header_note(name, panel_sections(nb)))
    page.cells.insert(1 if page.cells and page.cells[0].cell_type == "markdown" else 0, note)
    return page


# -- 3. assemble and render -------------------------------------------------------------------------------------


def doc_pages() -> list[Path]:
    """docs/*.md other than the landing page, in DOC_ORDER, then any others alphabetically."""
    pages = [p for p in DOCS.glob("*.md") if p.stem != "index"]
    return sorted(pages, key=lambda p: (DOC_ORDER.index(p.stem) if p.stem in DOC_ORDER else len(DOC_ORDER), p.stem))


def _toctree(caption: str, entries: list[str]) -> str:
    return "\n```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(entries) + "\n```\n"


def assemble_source(pages: dict[str, nbformat.NotebookNode], source: Path) -> None:
    """build/site-source/: conf.py, docs/*.md (the landing page gains the sidebar's table of contents), the
    prepared notebooks and _static/plotly.min.js from the installed plotly package."""
    shutil.rmtree(source, ignore_errors=True)
    for folder in ("docs", "notebooks", "_static"):
        (source / folder).mkdir(parents=True)
    shutil.copy2(DOCS / "conf.py", source / "conf.py")
    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", source / "_static" / "plotly.min.js")
    for page in [DOCS / "index.md", *doc_pages()]:
        shutil.copy2(page, source / "docs" / page.name)
    toc = _toctree("Notebooks", [f"/notebooks/{Path(n).stem}" for n in pages])
    toc += _toctree("Reference", [p.stem for p in doc_pages()])
    with (source / "docs" / "index.md").open("a", encoding="utf-8") as index:
        index.write(toc)
    for name, page in pages.items():
        nbformat.write(page, source / "notebooks" / name)


def run_sphinx(source: Path, site: Path, doctrees: Path, jobs: int = JOBS) -> list[str]:
    """sphinx-build from scratch; its warnings, one per line. A failed build raises with Sphinx's output."""
    shutil.rmtree(site, ignore_errors=True)
    shutil.rmtree(doctrees, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", str(jobs), "-d", str(doctrees),
               str(source), str(site)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sphinx-build failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    (site / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Aurora Serverless v1 workbook</title>'
        '<meta http-equiv="refresh" content="0; url=docs/index.html"></head>'
        '<body><p><a href="docs/index.html">Aurora Serverless v1 workbook</a></p></body></html>\n',
        encoding="utf-8",
    )
    return [line for line in done.stderr.splitlines() if line.strip()]


def build_site(build: Path = BUILD, jobs: int = JOBS) -> SiteBuild:
    """Execute, prepare, assemble and render the whole workbook into `build`/site; see the module's docstring."""
    result = SiteBuild(executed=build / "executed", source=build / "site-source", site=build / "site")
    start = time.perf_counter()
    shutil.rmtree(result.executed, ignore_errors=True)
    paths = notebooks()
    execute_notebooks(paths, result.executed, jobs)
    result.seconds["execute"] = time.perf_counter() - start
    prepared = {}
    for path in paths:
        executed = nbformat.read(result.executed / path.name, as_version=4)
        if errors := error_outputs(executed):
            result.errors[path.name] = errors
        prepared[path.name] = prepare_notebook(executed, path.name)
    assemble_source(prepared, result.source)
    sphinx_start = time.perf_counter()
    result.sphinx_warnings = run_sphinx(result.source, result.site, build / "doctrees", jobs)
    result.seconds["sphinx"] = time.perf_counter() - sphinx_start
    result.seconds["total"] = time.perf_counter() - start
    result.pages = {f"notebooks/{p.stem}": result.site / "notebooks" / f"{p.stem}.html" for p in paths}
    for page in [DOCS / "index.md", *doc_pages()]:
        result.pages[f"docs/{page.stem}"] = result.site / "docs" / f"{page.stem}.html"
    return result


def _size(folder: Path) -> str:
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return f"{total / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=BUILD, help="output folder (default: build/)")
    parser.add_argument("--jobs", type=int, default=JOBS, help="notebooks executed at once (default: 2)")
    args = parser.parse_args(argv)
    result = build_site(args.build, args.jobs)
    for warning in result.sphinx_warnings:
        print(f"sphinx: {warning}", file=sys.stderr)
    for name, errors in result.errors.items():
        print(f"error: notebooks/{name} failed while executing:\n  " + "\n  ".join(errors), file=sys.stderr)
    print(f"site: {result.site / 'index.html'} ({len(result.pages)} pages, {_size(result.site)}) in "
          f"{result.seconds['total']:.0f} s (notebooks {result.seconds['execute']:.0f} s, "
          f"sphinx {result.seconds['sphinx']:.0f} s)")  # fmt: skip
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
