"""Seconds from `make lab` on a fresh copy of this working tree to a JupyterLab that answers (issue 11: ≤ 45 s
with the packages already in the installer's cache).

The copy holds the files a fresh clone would have (tracked, or untracked and not ignored), so uncommitted changes
to the Makefile count. JupyterLab is stopped and the copy (with its venv) deleted afterwards.

    python benchmarks/lab_start.py                    # uv (the Makefile's default), the user's caches
    python benchmarks/lab_start.py --installer pip    # pip alone
    python benchmarks/lab_start.py --empty-cache      # fresh PIP_CACHE_DIR and UV_CACHE_DIR in a temporary folder
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900
TOKEN = "lab-start-bench"


def working_tree_copy(destination: Path) -> Path:
    """Copy the files a fresh clone of the working tree would have into ``destination``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def make_lab_s(installer: str = "uv", empty_cache: bool = False) -> float:
    """Seconds from `make lab` on a fresh copy to JupyterLab answering /api/status.

    Raises:
        RuntimeError: make exited before JupyterLab answered, or it took over TIMEOUT_S.
    """
    with tempfile.TemporaryDirectory(prefix="aurora-lab-start-") as folder:
        clone = working_tree_copy(Path(folder) / "clone")
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "VENV", "PYTHON")}
        env.update(JUPYTER_TOKEN=TOKEN, BROWSER="true")
        if empty_cache:
            env.update(PIP_CACHE_DIR=str(Path(folder) / "pip-cache"), UV_CACHE_DIR=str(Path(folder) / "uv-cache"))
        port = _free_port()
        log_path = Path(folder) / "make-lab.log"
        with log_path.open("w") as log:
            start = time.perf_counter()
            make = subprocess.Popen(["make", "lab", f"INSTALLER={installer}", f"LAB_ARGS=--no-browser --port={port}"],
                                    cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while not _answers(f"http://127.0.0.1:{port}/api/status?token={TOKEN}"):
                    if make.poll() is not None:
                        raise RuntimeError(f"make lab exited ({make.returncode}): {log_path.read_text()[-2000:]}")
                    if time.perf_counter() - start > TIMEOUT_S:
                        raise RuntimeError(f"JupyterLab did not answer within {TIMEOUT_S} s")
                    time.sleep(0.2)
                return time.perf_counter() - start
            finally:
                os.killpg(make.pid, signal.SIGTERM)
                try:
                    make.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(make.pid, signal.SIGKILL)
                    make.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv")
    parser.add_argument("--empty-cache", action="store_true")
    args = parser.parse_args()
    seconds = make_lab_s(args.installer, args.empty_cache)
    cache = "empty cache" if args.empty_cache else "warm cache"
    print(f"make lab on a fresh copy ({args.installer}, {cache}): {seconds:.1f} s to a running JupyterLab")


if __name__ == "__main__":
    main()
