"""`make bench`: wall times against the budgets of DESIGN §8, printed as a table.

Every figure is the median of several runs with the run cache cleared, so it is what a learner waits
for the first time a slider lands on a value. The raw simpy floor is the time simpy alone needs for
the same number of process wake-ups, measured in the same run.

    python benchmarks/run.py [--repeat 7] [--skip-notebooks]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import simpy

from aurora_sim import ClusterConfig, ModelAssumptions, Workload, backoff, simulate, widgets
from aurora_sim.scenarios import _run, week_with_auto_pause

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
    """Notebook 04's callback with its run cache cleared (its runs are cached in widgets, not in scenarios)."""
    def work() -> object:
        widgets.consolidation_demo.cache_clear()
        return callback()

    return work


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
        ("02 callback, default (min 1 ACU)", panel_callback(sale), 3600, 60, 0.150),
        ("02 callback, extreme (max sale, ramp)", panel_callback(sale, spike_rps=100.0, ramp_s=600), 3600, 60, 0.5),
        ("02 callback, extreme (min 256 ACU)", panel_callback(sale, min_capacity=256, max_capacity=256), 3600, 60,
         0.5),
        ("03 callback, default (pause 300 s)", panel_callback(day), 57_600, 60, 0.150),
        ("03 callback, extreme (pause 1 day, agent)",
         panel_callback(day, seconds_until_auto_pause=86_400, monitoring_agent=True), 57_600, 60, 0.5),
        ("00 explorer, extreme (sale × 3, 1 ACU)", panel_callback(explore, preset="flash sale", intensity=3.0), 3600,
         60, 0.5),
        ("01 callback, default (per request)", panel_callback(connections), 3600, 60, 0.150),
        ("01 callback, extreme (burst 150/s, pool 100)",
         panel_callback(connections, strategy="pool", burst_rps=150.0, pool_max_size=100), 3600, 60, 0.5),
        ("05 callback, default (long transaction)", panel_callback(blocking), 7200, 60, 0.150),
        ("05 callback, extreme (12 transactions, force)",
         panel_callback(blocking, pieces=12, timeout_action="ForceApplyCapacityChange"), 7200, 60, 0.5),
        ("06 callback, default (no retry)", panel_callback(retry), 1800, 60, 0.150),
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
    ]:
        floor = simpy_floor_s(duration, period, repeat) if duration else float("nan")
        result.append((label, median_s(work, repeat), floor, budget))
    return result


def notebook_suite_s() -> tuple[float, float, int]:
    """(nbmake over notebooks/, nbmake over as many empty notebooks, count) in seconds."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    empty = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                        "source": "import aurora_sim"}],
             "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
             "nbformat": 4, "nbformat_minor": 5}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(len(notebooks)):
            Path(folder, f"empty_{i}.ipynb").write_text(json.dumps(empty))
        baseline = _time_nbmake(sorted(Path(folder).glob("*.ipynb")))
    return _time_nbmake(notebooks), baseline, len(notebooks)


def _time_nbmake(paths: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", *map(str, paths)],
                   check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args()
    print(f"{'scenario':44} {'median':>9} {'simpy floor':>12} {'budget':>8}  verdict")
    for label, seconds, floor, budget in rows(args.repeat):
        verdict = "ok" if seconds <= budget else "OVER BUDGET"
        floor_text = "—" if math.isnan(floor) else f"{floor * 1000:.1f}ms"  # no simpy in the backoff experiment
        print(f"{label:44} {seconds * 1000:7.0f}ms {floor_text:>12} {budget * 1000:6.0f}ms  {verdict}")
    first_s, reused_s = endpoint_start_s()
    print(f"{'Data API endpoint start, server started for it':44} {first_s * 1000:7.0f}ms")
    print(f"{'Data API endpoint start, server reused':44} {reused_s * 1000:7.0f}ms")
    via_api_ms, direct_ms = data_api_round_trip_ms()
    print(f"{'Data API ExecuteStatement via boto3 (median)':44} {via_api_ms:7.2f}ms")
    print(f"{'same query, direct psycopg, same server':44} {direct_ms:7.2f}ms")
    if not args.skip_notebooks:
        suite, baseline, count = notebook_suite_s()
        ratio = suite / baseline if baseline else math.inf
        verdict = "ok" if ratio <= 2 else "OVER BUDGET"
        print(f"{f'nbmake, {count} notebooks':44} {suite:8.1f}s {f'{count} empty: {baseline:.1f}s':>12} "
              f"{'2x':>8}  {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
