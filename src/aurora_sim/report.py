"""A run's key numbers in one object, so notebook prose, widgets and checkers quote the same computed values.

Example:
    >>> from aurora_sim.scenarios import flash_sale
    >>> s = summarize(flash_sale(min_capacity=4).run(), start_s=600, end_s=1800)
    >>> s.failed, s.scale_failures
    (0, 0)
    >>> s.p95_latency_ms < 1000
    True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import facts, names
from ._tables import WholeTable, as_template
from .config import ModelAssumptions
from .costs import bill
from .scaling import resume_times_s
from .simulation import Run
from .workload import Workload


@dataclass(frozen=True)
class Summary:
    """What happened in a run: request figures for requests submitted within ``[start_s, end_s)``; event counts,
    resumes, paused time and cost over the whole run.

    Two figures say how long a resume took, and they differ: ``resume_s`` is the cluster's own longest resume
    (``resumed`` − ``resume_started``); ``cold_start_s`` is the longest any request that was served waited while
    the cluster resumed (NaN when none was in flight, e.g. a warm-up job paid the resume). ``extra_attempts``
    counts the attempts beyond each request's first: retries are work the cluster has to do.

    Example:
        >>> from aurora_sim.scenarios import office_day
        >>> day = summarize(office_day().run())
        >>> day.resumes > 0, day.resume_s > 10, day.cold_start_s > 10, day.extra_attempts
        (True, True, True, 0)
    """

    requests: int
    failed: int
    p50_latency_ms: float
    p95_latency_ms: float
    max_latency_s: float
    scale_ups: int
    scale_downs: int
    scale_failures: int
    forced_scalings: int
    aborted: int
    pauses: int
    resumes: int
    cold_start_s: float
    paused_s: float
    max_capacity_acu: int | float
    acu_hours: float
    billed_acu_hours: float
    cost_usd: float
    extra_attempts: int = 0
    resume_s: float = math.nan

    def describe(self, *, retries: bool = False) -> str:
        """One short HTML line for a widget panel; ``retries`` shows the extra attempts even when there were none.

        Example:
            >>> from aurora_sim.scenarios import office_day
            >>> line = summarize(office_day(prewarm_s=120, seconds_until_auto_pause=2700).run()).describe()
            >>> "<b>longest cold-start wait</b> nobody waited" in line, "nan" in line
            (True, False)
        """
        parts = [f"<b>p95 latency</b> {_ms(self.p95_latency_ms)}", f"<b>failed</b> {self.failed:,} of "
                 f"{self.requests:,}"]
        if retries or self.extra_attempts:
            parts.append(f"<b>extra attempts</b> {self.extra_attempts:,}")
        parts += [f"<b>scale-ups</b> {self.scale_ups}", f"<b>failed scalings</b> {self.scale_failures}",
                  f"<b>pauses</b> {self.pauses}"]
        if self.resumes:
            parts += [f"<b>{label}</b> {value}" for label, value in self._resume_rows()]
        parts.append(f"<b>cost</b> USD {self.cost_usd:.2f} ({self.billed_acu_hours:.2f} ACU-h)")
        return " · ".join(parts)

    def _resume_rows(self) -> list[tuple[str, str]]:
        """The cluster's longest resume, and the longest a served request waited through one."""
        if not self.resumes:
            wait = "—"
        else:
            wait = "nobody waited" if math.isnan(self.cold_start_s) else f"{self.cold_start_s:.0f} s"
        return [("longest resume", "—" if math.isnan(self.resume_s) else f"{self.resume_s:.0f} s"),
                ("longest cold-start wait", wait)]

    def rows(self, *, complete: bool = False) -> list[tuple[str, str]]:
        """The figures as (label, formatted value) pairs; zero counts are left out unless ``complete``."""
        rows = [("requests", f"{self.requests:,}"), ("failed", f"{self.failed:,}"),
                ("p50 latency", _ms(self.p50_latency_ms)), ("p95 latency", _ms(self.p95_latency_ms))]
        counts = [("extra attempts", self.extra_attempts), ("scale-ups", self.scale_ups),
                  ("scale-downs", self.scale_downs), ("failed scalings", self.scale_failures),
                  ("forced scalings", self.forced_scalings), ("transactions aborted", self.aborted),
                  ("pauses", self.pauses), ("resumes", self.resumes)]
        rows += [(label, f"{count:,}") for label, count in counts if count or complete]
        if complete or self.resumes:
            rows += self._resume_rows()
        if self.paused_s or complete:
            rows.append(("time paused", f"{self.paused_s / 60:,.0f} min"))
        rows += [("highest capacity", f"{self.max_capacity_acu} ACU"),
                 ("billed", f"{self.billed_acu_hours:.2f} ACU-hours"), ("cost", f"USD {self.cost_usd:.2f}")]
        return rows

    def _repr_markdown_(self) -> str:
        return "| figure | value |\n|---|---:|\n" + "\n".join(f"| {label} | {value} |" for label, value in self.rows())

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())


def compare(**summaries: Summary) -> pd.DataFrame:
    """Several summaries side by side, one column each, for a notebook to show as a table.

    Example:
        >>> from aurora_sim.scenarios import flash_sale
        >>> table = compare(small=summarize(flash_sale(min_capacity=1).run(), start_s=600, end_s=1800),
        ...                 large=summarize(flash_sale(min_capacity=4).run(), start_s=600, end_s=1800))
        >>> list(table.columns), table.loc["failed", "large"]
        (['small', 'large'], '0')
    """
    columns = {name: dict(summary.rows(complete=True)) for name, summary in summaries.items()}
    labels = next(iter(columns.values()), {}).keys()
    return pd.DataFrame({name: [rows[label] for label in labels] for name, rows in columns.items()},
                        index=pd.Index(list(labels), name="figure"))


def scaling_outcomes(**runs: Run) -> pd.DataFrame:
    """How each run's scale-up went, one row per run: when the capacity first rose, and what was given up for it.

    Example:
        >>> from aurora_sim.scenarios import nightly_report
        >>> table = scaling_outcomes(free=nightly_report(blocker="none").run(), held=nightly_report().run())
        >>> int(table.loc["free", "failed scalings"]), int(table.loc["held", "failed scalings"]) > 0
        (0, True)
    """
    rows = {label: _scaling_outcome(run) for label, run in runs.items()}
    return WholeTable.from_dict(rows, orient="index").rename_axis("run")


def _scaling_outcome(run: Run) -> dict[str, object]:
    rises_s, failed, forced, aborted, closed = run.sql(
        "SELECT min(time_s) FILTER (WHERE kind = $1 AND capacity_to > capacity_from), "
        "count(*) FILTER (WHERE kind = $2), count(*) FILTER (WHERE kind = $3), count(*) FILTER (WHERE kind = $4), "
        "count(*) FILTER (WHERE kind = $5) FROM events",
        params=[names.SCALE_COMPLETED, names.SCALE_FAILED, names.SCALE_FORCED, names.TRANSACTION_ABORTED,
                names.CONNECTION_CLOSED]).fetchall()[0]
    requests_failed = run.sql("SELECT count(*) FILTER (WHERE outcome <> $1) FROM requests",
                              params=[names.OK]).fetchall()[0][0]
    return {"capacity rises at (minute)": round(_nan(rises_s) / 60, 1), "failed scalings": failed,
            "forced scalings": forced, "transactions aborted": aborted, "connections dropped": closed,
            "failed requests": requests_failed}


def try_settings(*settings: str) -> pd.DataFrame:
    """What aurora_sim says to each setting: "accepted", or the ValueError it raises — a lesson, not a failure.

    Each setting is a Python expression over aurora_sim's public names and its ``scenarios`` module, evaluated
    as written, so the table shows exactly the code that was tried.

    Example:
        >>> table = try_settings("ClusterConfig(min_capacity=2)", "ClusterConfig(min_capacity=3)")
        >>> list(table["what aurora_sim says"])
        ['accepted', 'refused: min_capacity=3 is not on the aurora-mysql ladder (1, 2, 4, 8, 16, 32, 64, 128, 256)']
    """
    import aurora_sim  # at call time: the package's public names, whatever imported this module first

    from . import scenarios

    namespace = {**{name: getattr(aurora_sim, name) for name in aurora_sim.__all__}, "scenarios": scenarios}
    answers = []
    for setting in settings:
        try:
            eval(setting, {"__builtins__": {}}, namespace)  # the learner's own expression, shown beside its answer
        except ValueError as error:
            answers.append(f"refused: {error}")
        else:
            answers.append("accepted")
    return WholeTable({"what aurora_sim says": answers}, index=pd.Index(list(settings), name="setting"))


def event_log(run: Run, *, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """The run's event log, one row per event in the order they happened, with the minute each one came.

    ``kinds`` keeps only those event kinds (``names.EVENT_KINDS``; one kind may be given as a string); messages are
    shown whole.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> log = event_log(tour().run(), kinds=["pause_started", "paused"])
        >>> log["kind"].tolist(), log["capacity (ACU)"].tolist()
        (['pause_started', 'paused'], ['1 → 0', '1 → 0'])
        >>> event_log(tour().run(), kinds="paused").index.tolist()
        [41.0]
    """
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = sorted(set(kinds or ()) - set(names.EVENT_KINDS))
    if unknown:
        msg = f"kinds={list(kinds)!r} holds {unknown}, which are not event kinds; allowed: {names.EVENT_KINDS}"
        raise ValueError(msg)
    log = run.sql(
        "SELECT round(time_s / 60, 1) AS minute, kind, coalesce(rds_event_id, '') AS \"RDS event\", "
        "coalesce(capacity_from || ' → ' || capacity_to, '') AS \"capacity (ACU)\", message FROM events "
        "WHERE $1 OR list_contains($2, kind) ORDER BY seq",
        params=[kinds is None, list(kinds or ())]).df()
    return WholeTable(log).set_index("minute")


def event_kinds() -> pd.DataFrame:
    """Every kind of event a run logs, with the RDS event id and message the real service used (none for the
    simulator's own kinds). ``<…>`` marks what each event fills in.

    Example:
        >>> event_kinds().loc["scale_failed", "RDS event"]
        'RDS-EVENT-0143'
    """
    rows = {kind: (facts.RDS_EVENT_IDS.get(kind, ""),
                   as_template(facts.RDS_EVENT_MESSAGES[kind]) if kind in facts.RDS_EVENT_MESSAGES
                   else "(simulator only)") for kind in names.EVENT_KINDS}
    return WholeTable.from_dict(rows, orient="index", columns=["RDS event", "message"]).rename_axis("kind")


def stages(workload: Workload) -> pd.DataFrame:
    """The workload's stages in minutes, idle gaps included: requests per second and the CPU they need (ACUs).

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> stages(tour().workload).loc["35–50"].tolist()
        [0.0, 0.0]
    """
    segments = list(workload.segments)
    gaps = [(end, start, 0.0) for (_, end, _), (start, _, _) in itertools.pairwise(segments) if start > end]
    rows = {f"{start / 60:g}–{end / 60:g}": (round(rate, 2), round(rate * workload.query_cpu_s, 2))
            for start, end, rate in sorted(segments + gaps)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["requests/s", "CPU needed (ACU)"]).rename_axis(
        "minutes")


def window_table(runs: Mapping[str, Run], *, start_s: float, end_s: float) -> pd.DataFrame:
    """What each run went through within ``[start_s, end_s)``, one row per run: the requests submitted then, how
    many failed, their p95 latency, the mean CPU and the most connections open (beside ``max_connections``).

    Example:
        >>> from aurora_sim.scenarios import BURST_END_S, BURST_START_S, serverless_burst
        >>> table = window_table({"per request": serverless_burst().run()}, start_s=BURST_START_S,
        ...                      end_s=BURST_END_S)
        >>> list(table.columns)
        ['requests', 'failed', 'p95 latency (ms)', 'mean CPU %', 'peak connections', 'max_connections']
    """
    rows = {label: _window_row(run, start_s, end_s) for label, run in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


def _window_row(run: Run, start_s: float, end_s: float) -> dict[str, object]:
    summary = summarize(run, start_s=start_s, end_s=end_s)
    cpu, peak, limit = run.sql(
        "SELECT avg(cpu_pct), max(connections), max(max_connections) FROM metrics WHERE time_s >= $1 AND time_s < $2",
        params=[start_s, end_s]).fetchall()[0]
    return {"requests": summary.requests, "failed": summary.failed,
            "p95 latency (ms)": round(summary.p95_latency_ms, 1), "mean CPU %": round(_nan(cpu), 1),
            "peak connections": peak, "max_connections": limit}


def resume_table(assumptions: ModelAssumptions | None = None, *, count: int = 5000, seed: int = 2020) -> pd.DataFrame:
    """The measured cold starts (``facts.MEASURED_RESUME_S``) beside ``count`` resumes the model draws, in seconds:
    the same draws as ``plots.resume_distribution`` with the same ``seed``.

    Example:
        >>> table = resume_table(count=2000)
        >>> float(table.loc["median", "measured (s)"]), bool(40 < table.loc["median", "model draws (s)"] < 47)
        (43.2, True)
    """
    draws = resume_times_s(assumptions or ModelAssumptions(), np.random.default_rng(seed), count)
    model = {"median": np.median(draws), "p5": np.percentile(draws, 5), "p95": np.percentile(draws, 95),
             "min": draws.min(), "max": draws.max()}
    return pd.DataFrame({"measured (s)": [facts.MEASURED_RESUME_S[name] for name in facts.MEASURED_RESUME_S],
                         "model draws (s)": [round(float(model[name]), 1) for name in facts.MEASURED_RESUME_S]},
                        index=pd.Index(list(facts.MEASURED_RESUME_S), name="cold start"))


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def summarize(run: Run, *, start_s: float = 0.0, end_s: float | None = None) -> Summary:
    """Count, latency, scaling, pause and cost figures of ``run``; requests limited to ``[start_s, end_s)``."""
    end_s = run.duration_s if end_s is None else end_s
    requests, failed, p50, p95, longest, extra = _request_figures(run, start_s, end_s)
    kinds, ups, downs = _event_counts(run)
    resume, cold = _resume_figures(run)
    paused_s, max_capacity = _paused_and_peak(run)
    money = bill(run)
    return Summary(
        requests=requests, failed=failed, p50_latency_ms=_nan(p50) * 1000, p95_latency_ms=_nan(p95) * 1000,
        max_latency_s=_nan(longest), scale_ups=ups, scale_downs=downs,
        scale_failures=kinds.get(names.SCALE_FAILED, 0), forced_scalings=kinds.get(names.SCALE_FORCED, 0),
        aborted=kinds.get(names.TRANSACTION_ABORTED, 0), pauses=kinds.get(names.PAUSED_EVENT, 0),
        resumes=kinds.get(names.RESUMED, 0), cold_start_s=_nan(cold), paused_s=float(paused_s or 0.0),
        max_capacity_acu=_whole_or_half(max_capacity), acu_hours=money.acu_hours,
        billed_acu_hours=money.billed_acu_hours,
        cost_usd=money.cost_usd, extra_attempts=int(extra or 0), resume_s=_nan(resume))


def _request_figures(run: Run, start_s: float, end_s: float) -> tuple:
    """Requests, failed, p50 and p95 of ok latencies, the longest latency and extra attempts in ``[start_s, end_s)``:
    from the frames when the run keeps them (opening the run's DuckDB views cost a panel's callback ~20 ms)."""
    frame = run.frame("requests")
    submitted = frame["submitted_s"].to_numpy()
    inside = (submitted >= start_s) & (submitted < end_s)
    ok = inside & (frame["outcome"] == names.OK).to_numpy()
    latency = frame["latency_s"].to_numpy()
    count = int(inside.sum())
    return (count, count - int(ok.sum()), quantile_cont(latency[ok], 0.5), quantile_cont(latency[ok], 0.95),
            float(latency[inside].max()) if count else None,
            int((frame["attempts"].to_numpy()[inside] - 1).sum()) if count else None)


def quantile_cont(values: np.ndarray, q: float) -> float | None:
    """DuckDB's ``quantile_cont``: linear between the two nearest ranks (equal within a rounding step), None for
    no values.

    Example:
        >>> quantile_cont(np.array([3.0, 1.0, 2.0, 10.0]), 0.95)
        8.949999999999998
    """
    if not len(values):
        return None
    position = (len(values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    ordered = np.partition(values, (low, high))
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _event_counts(run: Run) -> tuple[dict[str, int], int, int]:
    """Events per kind, and how many scalings completed up and down."""
    events = _columns(run, "events", ("kind", "capacity_from", "capacity_to"))
    kinds, counts = np.unique(events["kind"].astype(str), return_counts=True)
    completed = events["kind"] == names.SCALE_COMPLETED
    low, high = (_floats(events[name][completed]) for name in ("capacity_from", "capacity_to"))
    return dict(zip(kinds.tolist(), counts.tolist(), strict=True)), int((high > low).sum()), int((high < low).sum())


def _paused_and_peak(run: Run) -> tuple[float, float]:
    """Seconds paused within ``[0, duration_s]`` (each paused row until the next row, in log order) and the
    highest capacity reached."""
    capacity = _columns(run, "capacity", ("time_s", "state", "capacity_acu"))
    kept = capacity["time_s"] <= run.duration_s
    time_s, state = capacity["time_s"][kept], capacity["state"][kept]
    until = np.minimum(np.append(time_s[1:], run.duration_s), run.duration_s)
    paused_s = 0.0
    for start_s, end_s in zip(time_s[state == names.PAUSED], until[state == names.PAUSED], strict=True):
        paused_s += end_s - start_s  # one by one, in order, as SQL's sum adds them
    return paused_s, capacity["capacity_acu"][kept].max()


def _floats(values: np.ndarray) -> np.ndarray:
    """A nullable integer column as floats, NaN for NULL (so that comparisons with it are false, as in SQL)."""
    return pd.Series(values, dtype=object).to_numpy(dtype=float, na_value=np.nan)


def _resume_figures(run: Run) -> tuple[float | None, float | None]:
    """The longest resume (``resumed`` − ``resume_started``), and the longest latency of a request served while
    the cluster resumed (in flight at any moment of ``[resume_started, resumed]``): not only the request that
    woke the cluster (it may fail fast) but every one held until the cluster was back."""
    events = _columns(run, "events", ("kind", "time_s"))
    started = events["time_s"][events["kind"] == names.RESUME_STARTED]
    if not len(started):
        return None, None
    done = np.append(np.sort(events["time_s"][events["kind"] == names.RESUMED]), np.inf)  # inf: still resuming
    resumed = done[np.searchsorted(done, started)]  # the first `resumed` at or after each start
    back = np.isfinite(resumed)
    longest = float((resumed - started)[back].max()) if back.any() else None
    requests = _columns(run, "requests", ("submitted_s", "finished_s", "latency_s", "outcome"))
    ok = requests["outcome"] == names.OK
    submitted, finished = requests["submitted_s"][ok], requests["finished_s"][ok]
    held = np.zeros(len(submitted), dtype=bool)
    for start_s, end_s in zip(started, resumed, strict=True):
        held |= (submitted <= end_s) & (finished >= start_s)
    return longest, float(requests["latency_s"][ok][held].max()) if held.any() else None


def _columns(run: Run, table: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """``columns`` of the run's ``table`` as numpy arrays, in ``seq`` order, read from the frame behind the table: a
    query through the table's view cost a panel's summary line 2–10 ms each, and the line took five."""
    frame = run.frame(table)
    return {name: frame[name].to_numpy() for name in columns}


def _whole_or_half(acu: float) -> int | float:
    """A capacity as v1 writes it (8) or, for a v2 half step, as 2.5."""
    return int(acu) if float(acu).is_integer() else float(acu)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
