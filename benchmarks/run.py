"""`make bench`: wall times against the budgets of DESIGN §8, printed as a table.

Every figure is the median of several runs with the run cache cleared, so it is what a learner waits
for the first time a slider lands on a value. The raw simpy floor is the time simpy alone needs for
the same number of process wake-ups, measured in the same run.

    python benchmarks/run.py [--repeat 7] [--skip-notebooks] [--skip-lab] [--browser]

`make lab`'s row runs benchmarks/lab_start.py: a fresh copy of the working tree, its own venv, until JupyterLab
answers (about half a minute with a warm uv cache).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import simpy

from aurora_sim import ClusterConfig, ModelAssumptions, Workload, backoff, simulate, widgets
from aurora_sim.scenarios import SHOP_END_S, _run, flash_sale, office_month, office_week, week_with_auto_pause

ROOT = Path(__file__).resolve().parents[1]


def median_s(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        _run.cache_clear()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def simpy_floor_s(duration_s: float, metrics_period_s: float, repeat: int) -> float:
    """simpy alone, waking a controller every 5 s and a sampler every metrics period for ``duration_s``."""
    period = ModelAssumptions().controller_period_s

    def ticker(env: simpy.Environment, step: float):
        while True:
            yield env.timeout(step)

    def work() -> None:
        env = simpy.Environment()
        env.process(ticker(env, period))
        env.process(ticker(env, metrics_period_s))
        env.run(until=duration_s)

    return median_s(work, repeat)


def panel_callback(panel: widgets.Panel, **changes: object) -> Callable[[], object]:
    values = {**panel.values(), **changes}
    return lambda: panel.update(**values)


def uncached(callback: Callable[[], object]) -> Callable[[], object]:
    """Notebook 11's callback with its evaluation cache cleared, so that every repeat replays the alarm."""
    def work() -> object:
        widgets.alarm_demo.cache_clear()
        return callback()

    return work


def recomputed(callback: Callable[[], object]) -> Callable[[], object]:
    """Notebook 04's callback with its run caches cleared (its runs are cached in widgets, not in scenarios)."""
    def work() -> object:
        widgets.consolidation_demo.cache_clear()
        widgets.consolidation.cluster_run.cache_clear()
        return callback()

    return work


def capstone_rows() -> list[tuple[str, Callable[[], object], float, float, float]]:
    """Notebook 12: the panel's callback (three telling hours under three models, or the whole week) and the
    capstone's week-long comparison (the shop under v1, v2 and provisioned), each with every run cache cleared: what
    a change of workload costs (a slider of one model re-runs that model only)."""
    from aurora_sim import ProvisionedConfig, ServerlessV2Config, capstone

    def fresh(callback: Callable[[], object]) -> Callable[[], object]:
        def work() -> object:
            widgets.capstone.clear_caches()  # every plan's run afresh: what a change of workload costs
            return callback()

        return work

    panel = widgets.capstone_panel()
    plans = {"v1": (ClusterConfig(min_capacity=1, max_capacity=8, auto_pause=False), capstone.prewarm(4)),
             "v2": ServerlessV2Config(min_capacity=0.5, max_capacity=8),
             "provisioned": ProvisionedConfig(instance_class="db.t3.large")}
    window = capstone.PANEL_WINDOWS_S["shop with a flash sale"]
    return [
        ("12 callback, default (the sale, three models)", fresh(panel_callback(panel)), window[1] - window[0], 300,
         0.100),
        ("12 callback, extreme (new app, v1 min 8, v2 0-32)",
         fresh(panel_callback(panel, workload="new app", v1_min_capacity=8, v2_min_capacity=0.0,
                              v2_max_capacity=32.0)), window[1] - window[0], 300, 0.5),
        ("12 callback, whole week (the shop, three models)", fresh(panel_callback(panel, whole_week=True)),
         capstone.WEEK_S, 3600, 1.5),
        ("capstone week, three models (the shop)",
         fresh(lambda: capstone.week_runs("shop with a flash sale", **plans)), capstone.WEEK_S, 3600, 1.5),
    ]


BROWSER_RECORD = ROOT / "build" / "browser_redraw.json"  # written by tests/test_browser.py
BROWSER_REDRAW_BUDGET_S = 0.300  # DESIGN §8: slider release to the figure's last change, in a real browser


def print_browser_redraws(*, measure: bool) -> None:
    """The medians tests/test_browser.py recorded: from a key press on a panel's slider to the last change of its
    figure in JupyterLab in headless Chromium, each move to a value not shown before (so simulated afresh).
    ``measure`` runs those browser tests first (a few minutes: JupyterLab, Run All of notebooks 01 and 02)."""
    if measure:
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_browser.py",
                        "-k", "notebook_02 or notebook_01 or every_other_panel"], check=True, cwd=ROOT)
    if not BROWSER_RECORD.is_file():
        print(f"{'browser redraw':44} not measured: run with --browser (or pytest tests/test_browser.py)")
        return
    for label, record in json.loads(BROWSER_RECORD.read_text()).items():
        seconds = statistics.median(record["ms"]) / 1000
        verdict = "ok" if seconds <= BROWSER_REDRAW_BUDGET_S else "OVER BUDGET"
        moves = f"{len(record['ms'])} moves"
        load = f"load {record['load']:.1f}, " if "load" in record else ""  # the machine may be shared
        print(f"{'browser: ' + label:44} {seconds * 1000:7.0f}ms {moves:>12} {BROWSER_REDRAW_BUDGET_S * 1000:6.0f}ms  "
              f"{verdict} ({load}measured {record['measured']})")


def backoff_point() -> None:
    """The published experiment's 100-client point: five strategies, 50 runs each."""
    for strategy in backoff.STRATEGIES:
        backoff.contended_write_experiment(strategy, 100, runs=50)


def rows(repeat: int) -> list[tuple[str, float, float, float]]:
    """(what, median seconds, simpy floor seconds, budget seconds)."""
    sale, day, explore = widgets.minimum_capacity_panel(), widgets.pause_resume_panel(), widgets.explore_panel()
    connections, blocking, retry = widgets.connection_panel(), widgets.blocking_panel(), widgets.retry_panel()
    engine_pair = widgets.engine_panel()
    consolidation = widgets.consolidation_panel()
    alarm = widgets.alarm_panel()  # the night is simulated once here; its callbacks replay the alarm only
    week = week_with_auto_pause()
    bulk = Workload(segments=[(0, 3600, 100.0)], query_cpu_s=0.005)
    rows_10k = Workload(segments=[(0, 1800, 5.5)])
    result = []
    for label, work, duration, period, budget in [
        ("02 callback, default (min 1 ACU)", panel_callback(sale), 3600, 60, 0.100),
        ("02 callback, extreme (max sale, ramp)", panel_callback(sale, spike_rps=100.0, ramp_s=600), 3600, 60, 0.5),
        ("02 callback, extreme (min 256 ACU)", panel_callback(sale, min_capacity=256, max_capacity=256), 3600, 60,
         0.5),
        ("03 callback, default (pause 300 s)", panel_callback(day), 57_600, 60, 0.100),
        ("03 callback, extreme (pause 1 day, agent)",
         panel_callback(day, seconds_until_auto_pause=86_400, monitoring_agent=True), 57_600, 60, 0.5),
        ("00 explorer, extreme (sale × 3, 1 ACU)", panel_callback(explore, preset="flash sale", intensity=3.0), 3600,
         60, 0.5),
        ("01 callback, default (per request)", panel_callback(connections), 3600, 60, 0.100),
        ("01 callback, extreme (burst 150/s, pool 100)",
         panel_callback(connections, strategy="pool", burst_rps=150.0, pool_max_size=100), 3600, 60, 0.5),
        ("05 callback, default (long transaction)", panel_callback(blocking), 7200, 60, 0.100),
        ("05 callback, extreme (12 transactions, force)",
         panel_callback(blocking, pieces=12, timeout_action="ForceApplyCapacityChange"), 7200, 60, 0.5),
        ("06 callback, default (no retry)", panel_callback(retry), 1800, 60, 0.100),
        ("09 callback, default (AZ outage, pool, no retry)", panel_callback(failover := widgets.failover_panel()),
         SHOP_END_S, 5, 0.100),
        ("09 callback, extreme (full jitter, 60 attempts, cap 2 s)",
         panel_callback(failover, strategy="full_jitter", max_attempts=60, cap_s=2), SHOP_END_S, 5, 0.5),
        ("09 callback, extreme (Data API, full jitter, 60 attempts, cap 2 s)",
         panel_callback(failover, connections="Data API", strategy="full_jitter", max_attempts=60, cap_s=2),
         SHOP_END_S, 5, 0.5),
        ("06 callback, extreme (full jitter, 10 attempts)",
         panel_callback(retry, strategy="full_jitter", max_attempts=10), 1800, 60, 0.5),
        ("04 callback, default (one shared cluster, report at 55 min)", recomputed(panel_callback(consolidation)),
         7200, 60, 0.100),
        ("04 callback, extreme (one cluster each, report at 90 min)",
         recomputed(panel_callback(consolidation, plan="separate", report_start_min=90)),
         7200, 60, 0.5),
        ("07 callback, default (two engines, peak 80)", panel_callback(engine_pair), 2640, 60, 0.100),
        ("07 callback, extreme (peak 150, PostgreSQL max 64)",
         panel_callback(engine_pair, peak_acu=150.0, postgresql_max_capacity=64), 2820, 60, 0.5),
        ("11 callback, default (CPU alarm, 1 of 1 minutes)", uncached(panel_callback(alarm)), 21_600, 60, 0.100),
        ("11 callback, extreme (10 of 10 × 300 s, breaching)",
         uncached(panel_callback(alarm, evaluation_periods=10, datapoints_to_alarm=10, period_s=300,
                                 treat_missing_data="breaching")), 21_600, 60, 0.5),
        ("backoff experiment, 100 clients (5 x 50 runs)", backoff_point, 0, 60, 2.0),
        ("1 h at 100 req/s (360 k requests)", lambda: simulate(ClusterConfig(), bulk, duration_s=3600), 3600, 60,
         0.150),
        ("30 min, every request a row (~10 k)", lambda: simulate(ClusterConfig(), rows_10k, duration_s=1800), 1800,
         60, 0.150),
        ("7 days with auto-pause", lambda: week.run(), week.duration_s, week.metrics_period_s, 2.0),
        *engine_rows(),
        *capstone_rows(),
    ]:
        floor = simpy_floor_s(duration, period, repeat) if duration else float("nan")
        result.append((label, median_s(work, repeat), floor, budget))
    return result


# What the budget compares the suite with: a notebook that only imports the package. A second floor shows how much of
# the gap is the stack every workbook notebook starts with (plotly's first figure and FigureWidget, ipywidgets) rather
# than the notebooks' own demos: a notebook that shows one panel and nothing else.
FLOOR_CELLS = {"empty": "import aurora_sim",
               "one panel": "from aurora_sim import widgets\nwidgets.minimum_capacity_panel()"}


def notebook_suite_s() -> tuple[float, dict[str, float], int]:
    """(nbmake over notebooks/, {floor: nbmake over as many notebooks of that floor's one cell}, count) in seconds."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    floors = {}
    for floor, source in FLOOR_CELLS.items():
        notebook = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                               "source": source}],
                    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                    "nbformat": 4, "nbformat_minor": 5}
        with tempfile.TemporaryDirectory() as folder:
            for i in range(len(notebooks)):
                Path(folder, f"floor_{i}.ipynb").write_text(json.dumps(notebook))
            floors[floor] = _time_nbmake(sorted(Path(folder).glob("*.ipynb")))
    return _time_nbmake(notebooks), floors, len(notebooks)


def run_all_s(path: Path) -> tuple[float, float, str]:
    """(seconds, slowest cell's seconds, that cell's first line) for one notebook's Run All, executed as nbmake
    does: nbclient, a fresh kernel, outputs cleared, cwd the notebook's folder (kernel start and stop included)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, record_timing=True)
    start = time.perf_counter()
    client.execute(cwd=str(path.parent), stderr=subprocess.DEVNULL)  # the kernel's start-up warnings
    seconds = time.perf_counter() - start
    cells = [(_cell_s(cell), cell.source.strip().splitlines()[0][:40]) for cell in notebook.cells
             if cell.cell_type == "code" and cell.source.strip()]
    slowest_s, first_line = max(cells, default=(0.0, ""))
    return seconds, slowest_s, first_line


def _cell_s(cell) -> float:
    """A cell's run time from the timings nbclient records in its metadata (record_timing)."""
    from datetime import datetime

    timing = cell.metadata.get("execution", {})
    if "shell.execute_reply" not in timing:
        return 0.0
    started, ended = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                      for key in ("iopub.execute_input", "shell.execute_reply"))
    return (ended - started).total_seconds()


def postgres_ready_s(repeat: int) -> tuple[float, float, float]:
    """Seconds until ``realdb.shared_server()`` hands out a server: the first time (initdb), then medians for a
    server that is stopped but initialised, and one that is running. In a folder of its own, so the user's shared
    server is left alone."""
    from aurora_sim import realdb

    with tempfile.TemporaryDirectory(prefix="aurora-bench-pg-") as folder:
        home = Path(folder)
        try:
            start = time.perf_counter()
            realdb.shared_server(home)
            first = time.perf_counter() - start
            stopped, running = [], []
            for _ in range(repeat):
                realdb.stop_shared_server(home)
                for times in (stopped, running):
                    start = time.perf_counter()
                    realdb.shared_server(home)
                    times.append(time.perf_counter() - start)
        finally:
            realdb.stop_shared_server(home)
    return first, statistics.median(stopped), statistics.median(running)


def _verdict(seconds: float, budget: float) -> str:
    return "ok" if seconds <= budget else "OVER BUDGET"


def print_setup_figures(repeat: int, notebooks: bool, lab: bool) -> None:
    """The set-up and notebook-time rows of issue 11: PostgreSQL ready, each notebook's Run All, make lab."""
    if hasattr(os, "getloadavg"):  # wall times stretch on a busy machine: say how busy it was
        print(f"{'load average (1 min) before these rows':44} {os.getloadavg()[0]:8.1f} on {os.cpu_count()} cores")
    first, stopped, running = postgres_ready_s(repeat)
    print(f"{'PostgreSQL ready, first start (initdb)':44} {first * 1000:7.0f}ms")
    for label, seconds in (("stopped, initialised", stopped), ("already running", running)):
        print(f"{f'PostgreSQL ready, {label}':44} {seconds * 1000:7.0f}ms {'—':>12} {1000:6.0f}ms  "
              f"{_verdict(seconds, 1.0)}")
    if notebooks:
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            load = f"load {os.getloadavg()[0]:.1f}, " if hasattr(os, "getloadavg") else ""  # other work stretches it
            try:
                seconds, slowest_s, first_line = run_all_s(path)
            except Exception as exc:  # a failing notebook (or kernel) is reported, and the bench goes on
                print(f"{f'Run All {path.stem}':44} failed: {type(exc).__name__}: {str(exc).strip()[-200:]}")
                continue
            print(f"{f'Run All {path.stem}':44} {seconds:8.1f}s {'—':>12} {8:7.0f}s  {_verdict(seconds, 8.0)} "
                  f"({load}slowest cell {slowest_s:.1f}s: {first_line})")
    if lab:
        from lab_start import make_lab_s  # beside this file

        seconds = make_lab_s()
        print(f"{'make lab, fresh copy, warm cache (uv)':44} {seconds:8.1f}s {'—':>12} {45:7.0f}s  "
              f"{_verdict(seconds, 45.0)}")


def _time_nbmake(paths: list[Path]) -> float:
    """Seconds for one nbmake run, as `make test` runs it (serially); a failing notebook is reported, not fatal."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        print(f"nbmake failed, so its time is not comparable: {done.stdout.strip().splitlines()[-1]}", file=sys.stderr)
    return seconds


def _median_ms(work: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def endpoint_start_s() -> tuple[float, float]:
    """Seconds until a Data API endpoint answers: on a server started for it (initdb and all, in a folder of its own,
    so the user's shared server is left alone), and on the same server reused."""
    from aurora_sim import data_api, realdb
    from aurora_sim.data_api.sql import Database
    from aurora_sim.realdb import shared

    binaries = realdb.postgres_binaries()[0]
    with tempfile.TemporaryDirectory(prefix="aurora-bench-") as home:
        seconds = []
        try:
            for _ in range(2):
                start = time.perf_counter()
                server = shared.ensure_running(binaries, Path(home))
                backend = Database(admin_dsn=server.dsn)
                with data_api.serve(auto_pause_s=None, backend=backend):
                    seconds.append(time.perf_counter() - start)
                backend.close()
        finally:
            shared.stop(Path(home))
    return seconds[0], seconds[1]


def data_api_round_trip_ms(calls: int = 200) -> tuple[float, float]:
    """Median ExecuteStatement round trip through unmodified boto3, and the same query over a direct psycopg
    connection to the same database on the same server (the Data API's own cost is the difference)."""
    import boto3
    import psycopg
    from botocore.config import Config

    from aurora_sim import data_api
    from aurora_sim.data_api.sql import Database

    sql = "SELECT * FROM Customer WHERE id = 1"
    backend = Database()  # on the shared server, as every endpoint
    try:
        with data_api.serve(auto_pause_s=None, backend=backend) as endpoint:
            client = boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())
            arns = {"resourceArn": endpoint.resource_arn, "secretArn": endpoint.secret_arn,
                    "database": endpoint.database}
            client.execute_statement(sql=sql, **arns)  # warm: botocore's first call loads its model
            via_api = _median_ms(lambda: client.execute_statement(sql=sql, **arns), calls)
        with psycopg.connect(backend.endpoint_db.conninfo, autocommit=True) as conn:
            direct = _median_ms(lambda: conn.execute(sql).fetchall(), calls)
    finally:
        backend.close()
    return via_api, direct


ENGINE_CPU_S: dict[str, list[float]] = {}  # CPU seconds of each engine row's runs, recorded as they are timed


def engine_rows() -> list[tuple[str, Callable[[], object], float, float, float]]:
    """Issue 11's simulate() budgets: the 1-h flash sale, the office week (3.6 M requests), the office month. Each
    run also records its CPU time (``print_engine_cpu``): on a shared machine, wall time includes waiting."""
    sale, office, month = flash_sale(), office_week(), office_month()
    return [
        (label, _cpu_timed(label, run), duration, period, budget) for label, run, duration, period, budget in [
            ("1 h flash sale (scenarios.flash_sale)", sale.run, sale.duration_s, sale.metrics_period_s, 0.050),
            ("office week, 20 req/s (3.6 M requests)", office.run, office.duration_s, office.metrics_period_s, 0.5),
            ("office month, 30 days (16 M requests)", month.run, month.duration_s, month.metrics_period_s, 2.0),
        ]
    ]


def _cpu_timed(label: str, work: Callable[[], object]) -> Callable[[], object]:
    def timed() -> object:
        start = time.process_time()
        result = work()
        ENGINE_CPU_S.setdefault(label, []).append(time.process_time() - start)
        return result

    return timed


def print_engine_cpu() -> None:
    """The engine rows' median CPU time (user + system, this process) beside their wall-clock medians above, and the
    machine's load: a loaded 2-core machine stretches wall time, not CPU time."""
    for label, seconds in ENGINE_CPU_S.items():
        print(f"{'  CPU time: ' + label.split(' (')[0]:44} {statistics.median(seconds) * 1000:7.0f}ms")
    print(f"{'load average (1 min) while measuring':44} {os.getloadavg()[0]:9.2f}")


def month_peak_memory_mib() -> float:
    """Peak resident memory of a fresh Python that imports aurora_sim and simulates the office month: VmHWM, the
    peak of its own address space (getrusage's ru_maxrss would carry over this process's peak through exec)."""
    code = ("from pathlib import Path; from aurora_sim.scenarios import office_month; office_month().run(); "
            "print([line for line in Path('/proc/self/status').read_text().splitlines() if 'VmHWM' in line][0])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return int(out.stdout.split()[-2]) / 1024  # "VmHWM:  651234 kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-lab", action="store_true", help="skip benchmarks/lab_start.py (make lab, fresh copy)")
    parser.add_argument("--browser", action="store_true",
                        help="measure the panels' redraw in JupyterLab in Chromium first (else print the last one)")
    args = parser.parse_args()
    print(f"{'scenario':44} {'median':>9} {'simpy floor':>12} {'budget':>8}  verdict")
    for label, seconds, floor, budget in rows(args.repeat):
        verdict = "ok" if seconds <= budget else "OVER BUDGET"
        floor_text = "—" if math.isnan(floor) else f"{floor * 1000:.1f}ms"  # no simpy in the backoff experiment
        print(f"{label:44} {seconds * 1000:7.0f}ms {floor_text:>12} {budget * 1000:6.0f}ms  {verdict}")
    print_engine_cpu()
    peak = month_peak_memory_mib()
    print(f"{'office month, peak memory (whole process)':44} {peak:6.0f}MiB {'':>12} {1024:5.0f}MiB  "
          f"{'ok' if peak <= 1024 else 'OVER BUDGET'}")
    print_browser_redraws(measure=args.browser)
    first_s, reused_s = endpoint_start_s()
    print(f"{'Data API endpoint start, server started for it':44} {first_s * 1000:7.0f}ms")
    print(f"{'Data API endpoint start, server reused':44} {reused_s * 1000:7.0f}ms")
    via_api_ms, direct_ms = data_api_round_trip_ms()
    print(f"{'Data API ExecuteStatement via boto3 (median)':44} {via_api_ms:7.2f}ms")
    print(f"{'same query, direct psycopg, same server':44} {direct_ms:7.2f}ms")
    print_setup_figures(args.repeat, notebooks=not args.skip_notebooks, lab=not args.skip_lab)
    if not args.skip_notebooks:
        suite, floors, count = notebook_suite_s()
        baseline = floors["empty"]
        ratio = suite / baseline if baseline else math.inf
        verdict = "ok" if ratio <= 2 else "OVER BUDGET"
        print(f"{f'nbmake, {count} notebooks':44} {suite:8.1f}s {f'{count} empty: {baseline:.1f}s':>12} "
              f"{'2x':>8}  {verdict} ({ratio:.2f}x)")
        panel = floors["one panel"]
        print(f"{f'  {count} notebooks of one panel each':44} {panel:8.1f}s {'':>12} {'':>8}  "
              f"(the suite is {suite / panel:.2f}x these; they are {panel / baseline:.2f}x the empty ones)")

if __name__ == "__main__":
    main()
