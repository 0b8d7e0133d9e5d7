"""Notebook 07: Aurora MySQL and Aurora PostgreSQL side by side — the facts that differ, and what runs show.

``differences()`` lays the documented (and inferred) differences out as one table; ``scaling_summary``,
``bills`` and ``client_texts`` read runs of the same workload on either engine.

Example:
    >>> table = differences()
    >>> table.loc["lowest capacity while running (ACU)"].tolist()[:2]
    ['1', '2']
    >>> ENGINE_NAMES["aurora-postgresql"]
    'Aurora PostgreSQL'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from . import facts, names
from ._tables import WholeTable
from .costs import bill
from .report import Summary, quantile_cont, summarize
from .scenarios import POSTGRESQL_BLOCKERS
from .simulation import Run

ENGINE_NAMES = {"aurora-mysql": "Aurora MySQL", "aurora-postgresql": "Aurora PostgreSQL"}
MYSQL, POSTGRESQL = facts.ENGINES


def _label(*constants: str) -> str:
    """The source labels of some facts, each once, in order: "DOC", "DOC · INF". A label written out ("DOC · INF")
    stands for itself: where a constant mixes sources, the row names the labels of its two values."""
    labels = [facts.SOURCES[name].label if name in facts.SOURCES else name for name in constants]
    return " · ".join(dict.fromkeys(labels))


def _rungs(engine: str) -> str:
    return ", ".join(str(rung) for rung in facts.CAPACITY_LADDER[engine])


def _step_above_64(engine: str) -> str:
    rung = facts.next_rung(engine, 64, +1)
    return f"{rung} (× {rung / 64:g})"


def _lowest(engine: str) -> int:
    return facts.CAPACITY_LADDER[engine][0]


def _limits(engine: str) -> str:
    lowest = _lowest(engine)
    label = facts.max_connections_label(engine, lowest)
    return f"{facts.max_connections(engine, lowest):,} ({label})"


def _application_limit(engine: str) -> str:
    limit = facts.connection_limit(engine, _lowest(engine))
    reserved = facts.max_connections(engine, _lowest(engine)) - limit
    return f"{limit:,}" + (f" ({reserved} kept for superusers)" if reserved else "")


def _versions(engine: str) -> str:
    return ", ".join(facts.ENGINE_VERSION_RELEASES[engine].values())


def _forced_texts(engine: str) -> str:
    texts = {version: facts.FORCED_SCALING_ERROR[(engine, version)] for version in facts.ENGINE_VERSIONS[engine]}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{version}: {text}" for version, text in texts.items())


# What each timeout parameter ends (PostgreSQL manual, runtime-config-client; MySQL manual, max_execution_time).
_PARAMETER_SCOPE = {"max_execution_time": "a top-level read-only SELECT", "statement_timeout": "any statement",
                    "idle_in_transaction_session_timeout": "a session idle in an open transaction"}


def _parameters(engine: str) -> str:
    parts = []
    for name in sorted(facts.ENGINE_PARAMETERS[engine], key=lambda name: name != "statement_timeout"):
        missing_in = facts.PARAMETER_MISSING_IN.get(name)
        absent = f"; not in {missing_in[1]}" if missing_in and missing_in[0] == engine else ""
        parts.append(f"{name} ({_PARAMETER_SCOPE[name]}{absent})")
    return ", ".join(parts)


def _blockers(engine: str) -> str:
    if engine == MYSQL:
        return "—"
    sql = {kind.__name__: name for name, kind in POSTGRESQL_BLOCKERS.items()}  # Notify -> NOTIFY
    documented_classes = facts.DOCUMENTED_POSTGRESQL_BLOCKERS
    documented = [sql[name] for name in documented_classes]
    inferred = [sql[name] for name in facts.POSTGRESQL_ONLY_BLOCKERS if name not in documented_classes]
    return f"{', '.join(documented)} (documented); {', '.join(inferred)} (the model's inference)"


def _logs(engine: str) -> str:
    logs = ", ".join(facts.LOG_TYPES[engine])
    if len(facts.LOG_TYPES[engine]) > 1:
        return logs
    exported = ", ".join(facts.CLOUDWATCH_LOGS_EXPORTS[engine])
    return f"{logs} (one log for everything; a provisioned cluster exports it as {exported})"


# Each row: what differs, how to write it for one engine, and the facts behind it (for the source column).
_ROWS = (
    ("v1 engine versions", _versions, ("ENGINE_VERSION_RELEASES",)),
    ("capacity ladder (ACU)", _rungs, ("CAPACITY_LADDER",)),
    ("lowest capacity while running (ACU)", lambda engine: str(_lowest(engine)), ("CAPACITY_LADDER",)),
    ("the step above 64 ACU", _step_above_64, ("CAPACITY_LADDER",)),
    ("max_connections at the lowest capacity", _limits,
     tuple(facts.max_connections_label(engine, facts.CAPACITY_LADDER[engine][0]) for engine in facts.ENGINES)),
    ("connections an application can open there", _application_limit, ("SUPERUSER_RESERVED_CONNECTIONS",)),
    ("a connection over the limit receives", lambda engine: facts.TOO_MANY_CONNECTIONS_ERROR[engine],
     ("TOO_MANY_CONNECTIONS_ERROR",)),
    ("a transaction aborted by forced scaling receives", _forced_texts, ("DOC", "INF")),  # no PostgreSQL text
    ("timeout parameters", _parameters, ("ENGINE_PARAMETERS", "PARAMETER_MISSING_IN")),
    ("also blocks scaling", _blockers, ("DOCUMENTED_POSTGRESQL_BLOCKERS", "POSTGRESQL_ONLY_BLOCKERS")),
    ("logs a v1 cluster uploads to CloudWatch", _logs, ("LOG_TYPES", "CLOUDWATCH_LOGS_EXPORTS")),
)


def differences() -> WholeTable:
    """What differs between the engines on Aurora Serverless v1, one row per difference, with the source labels
    of the facts behind it (DOC, API, 3P, INF; the per-value labels are in the cells where they differ).

    Example:
        >>> differences().loc["the step above 64 ACU"].tolist()
        ['128 (× 2)', '192 (× 3)', 'API']
    """
    rows = {what: [write(MYSQL), write(POSTGRESQL), _label(*constants)] for what, write, constants in _ROWS}
    return WholeTable.from_dict(rows, orient="index",
                                columns=[ENGINE_NAMES[MYSQL], ENGINE_NAMES[POSTGRESQL], "source"]).rename_axis(
        "what differs")


# --- Reading runs of the same workload on either engine --------------------------------------------------------

def capacity_path(run: Run) -> str:
    """The rungs a run's capacity went through, in order, paused (0) left out: "8 → 16 → 32".

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> capacity_path(tour().run())
        '1 → 2 → 1'
    """
    rungs = [int(capacity) for (capacity,) in run.sql(
        "SELECT capacity_acu FROM capacity WHERE capacity_acu > 0 AND time_s <= $1 ORDER BY seq",
        params=[run.duration_s]).fetchall()]
    path = [rung for index, rung in enumerate(rungs) if index == 0 or rung != rungs[index - 1]]
    return " → ".join(str(rung) for rung in path)


def _latency(milliseconds: float) -> str:
    if math.isnan(milliseconds):
        return "n/a"
    return f"{milliseconds / 1000:.1f} s" if milliseconds >= 1000 else f"{milliseconds:.0f} ms"


def scaling_summary(**runs: Run) -> WholeTable:
    """How each run scaled and what it cost, one row per run: the rungs it went through, failed scalings and
    requests, p95 latency, and the bill.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> table = scaling_summary(tour=tour().run())
        >>> table.loc["tour", "capacity path (ACU)"], int(table.loc["tour", "failed scalings"])
        ('1 → 2 → 1', 0)
    """
    rows = {}
    for label, run in runs.items():
        summary = summarize(run)
        rows[label] = {"capacity path (ACU)": capacity_path(run), "failed scalings": summary.scale_failures,
                       "failed requests": summary.failed, "p95 latency": _latency(summary.p95_latency_ms),
                       "billed ACU-hours": round(summary.billed_acu_hours, 2),
                       "cost (USD)": round(summary.cost_usd, 2)}
    return WholeTable.from_dict(rows, orient="index").rename_axis("run")


def bills(**runs: Run) -> pd.DataFrame:
    """What each run is billed, one row per run: its capacity range, the hours it spent paused, how many cold starts
    a user waited through, ACU-hours billed (at least ``facts.MIN_BILLED_S_PER_ACTIVATION`` per activation) and
    the cost.

    Example:
        >>> from aurora_sim.scenarios import idle_dev_database
        >>> table = bills(always_on=idle_dev_database(auto_pause=False).run())
        >>> float(table.loc["always_on", "billed ACU-hours"])
        24.0
    """
    rows = {}
    for label, run in runs.items():
        summary = summarize(run)
        config = run.config
        rows[label] = {"capacity (ACU)": f"{config.min_capacity}–{config.max_capacity}",
                       "auto-pause": "on" if config.auto_pause else "off",
                       "hours paused": round(summary.paused_s / 3600, 1), "cold starts": summary.resumes,
                       "billed ACU-hours": round(summary.billed_acu_hours, 2), "cost (USD)": round(summary.cost_usd, 2)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


_RECEIVED = {"requests": "request failed", names.TRANSACTION_ABORTED: "transaction or statement aborted",
             names.CONNECTION_CLOSED: "connection closed by the cluster"}


def client_texts(**runs: Run) -> WholeTable:
    """Every error text the clients of each run received, how often, and how: a failed request, an aborted
    transaction or statement, a connection the cluster closed. A run with none says so.

    Example:
        >>> from aurora_sim.scenarios import connection_rush
        >>> table = client_texts(rush=connection_rush().run())
        >>> table["text"].tolist()
        ['ERROR 1040 (HY000): Too many connections']
    """
    frames = []
    for label, run in runs.items():
        found = run.sql(
            "SELECT 'requests' AS source, error AS text, count(*) AS n FROM requests WHERE error IS NOT NULL "
            "GROUP BY error UNION ALL SELECT kind, message, count(*) FROM events WHERE kind IN ($1, $2) "
            "GROUP BY kind, message ORDER BY n DESC",
            params=[names.TRANSACTION_ABORTED, names.CONNECTION_CLOSED]).df()
        if found.empty:
            found = pd.DataFrame({"source": [""], "text": ["(no error)"], "n": [0]})
        found.insert(0, "run", label)
        frames.append(found)
    table = pd.concat(frames, ignore_index=True)
    table["how"] = table.pop("source").map(_RECEIVED).fillna("")
    table = table.rename(columns={"n": "count"})[["run", "how", "text", "count"]]
    return WholeTable(table).set_index(["run", "how"])


@dataclass(frozen=True)
class Headline:
    """The few figures a panel's line gives for one run: the same values as ``report.summarize``, in a third of
    its time (a panel that runs both engines summarizes twice per slider move)."""

    p95_latency_ms: float
    failed: int
    scale_failures: int
    max_capacity_acu: int
    cost_usd: float


def headline(run: Run) -> Headline:
    """``run``'s p95 latency of ok requests, failed requests, failed scalings, highest capacity and bill.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> line, full = headline(tour().run()), summarize(tour().run())
        >>> (line.failed, line.max_capacity_acu, line.cost_usd) == (full.failed, full.max_capacity_acu, full.cost_usd)
        True
    """
    requests, events, capacity = run.frame("requests"), run.frame("events"), run.frame("capacity")
    submitted = requests["submitted_s"].to_numpy() < run.duration_s
    ok = (requests["outcome"] == names.OK).to_numpy()
    top = capacity["capacity_acu"].to_numpy()[capacity["time_s"].to_numpy() <= run.duration_s].max()
    p95_s = quantile_cont(requests["latency_s"].to_numpy()[submitted & ok], 0.95)
    return Headline(p95_latency_ms=math.nan if p95_s is None else p95_s * 1000,
                    failed=int((submitted & ~ok).sum()),
                    scale_failures=int((events["kind"] == names.SCALE_FAILED).sum()),
                    max_capacity_acu=int(top), cost_usd=bill(run).cost_usd)


def headlines(runs: Mapping[str, Run]) -> dict[str, Headline]:
    """``headline`` of every run, by label (what ``describe_pair`` reads).

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> headlines({"tour": tour().run()})["tour"].max_capacity_acu
        2
    """
    return {label: headline(run) for label, run in runs.items()}


def describe_pair(lines: Mapping[str, Headline | Summary]) -> str:
    """One HTML line for a panel that runs both engines: each engine's p95 latency, failures, top rung and cost.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> "<b>tour</b>" in describe_pair(headlines({"tour": tour().run()}))
        True
    """
    parts = [f"<b>{label}</b> p95 {_latency(s.p95_latency_ms)}, failed {s.failed:,}, failed scalings "
             f"{s.scale_failures}, up to {s.max_capacity_acu} ACU, USD {s.cost_usd:.2f}"
             for label, s in lines.items()]
    return " · ".join(parts)
