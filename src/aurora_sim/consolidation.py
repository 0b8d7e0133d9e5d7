"""One cluster per database, or one for all: run the same databases both ways and compare them.

A *plan* groups databases into clusters: ``{"shared": (("shop", "reports"), config)}`` puts both on one
cluster, ``{"shop": (("shop",), config_a), "reports": (("reports",), config_b)}`` gives each its own. Each
database keeps its own random streams, so a request arrives at the same moment whichever cluster serves it.

Example:
    >>> from aurora_sim import ClusterConfig, Workload
    >>> workloads = {"shop": Workload(segments=[(0, 600, 2.0)]), "tool": Workload(segments=[(0, 300, 1.0)])}
    >>> runs = separate_clusters({"shop": ClusterConfig(), "tool": ClusterConfig()}, workloads, duration_s=900)
    >>> list(runs), runs["tool"].databases
    (['shop', 'tool'], ('tool',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from . import costs
from .config import ClusterConfig, ModelAssumptions
from .simulation import Run, simulate
from .workload import Workload

Plan = Mapping[str, tuple[Sequence[str], ClusterConfig]]


def run_plan(plan: Plan, workloads: Mapping[str, Workload], *, duration_s: float, seed: int = 0,
             metrics_period_s: float = 60, assumptions: ModelAssumptions | None = None) -> dict[str, Run]:
    """Simulate each cluster of ``plan`` with the databases it hosts; every database must be on exactly one.

    Raises:
        ValueError: If a database is missing, unknown or on two clusters (the message names it).
    """
    placed = [name for databases, _ in plan.values() for name in databases]
    for name in placed:
        if name not in workloads:
            raise ValueError(f"database {name!r} is not one of {tuple(workloads)}")
        if placed.count(name) > 1:
            raise ValueError(f"database {name!r} is on {placed.count(name)} clusters; put it on exactly one")
    missing = [name for name in workloads if name not in placed]
    if missing:
        raise ValueError(f"databases {tuple(missing)} are on no cluster; put each on exactly one")
    return {cluster: simulate(config, {name: workloads[name] for name in databases}, duration_s=duration_s,
                              seed=seed, metrics_period_s=metrics_period_s, assumptions=assumptions)
            for cluster, (databases, config) in plan.items()}


def separate_clusters(configs: Mapping[str, ClusterConfig], workloads: Mapping[str, Workload], *,
                      duration_s: float, seed: int = 0, metrics_period_s: float = 60,
                      assumptions: ModelAssumptions | None = None) -> dict[str, Run]:
    """Each database on a cluster of its own, with its own ``ClusterConfig`` (keyed by the database's name)."""
    plan = {name: ((name,), configs[name]) for name in workloads}
    return run_plan(plan, workloads, duration_s=duration_s, seed=seed, metrics_period_s=metrics_period_s,
                    assumptions=assumptions)


def _cluster_row(run: Run) -> dict[str, object]:
    config, bill = run.config, costs.bill(run)
    failed = run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall()[0][0]
    pauses = run.sql("SELECT count(*) FROM events WHERE kind = 'paused'").fetchall()[0][0]
    failed_scaling = run.sql("SELECT count(*) FROM events WHERE kind = 'scale_failed'").fetchall()[0][0]
    return {"databases": ", ".join(run.databases), "range (ACU)": f"{config.min_capacity}–{config.max_capacity}",
            "failed requests": int(failed), "failed scalings": int(failed_scaling), "pauses": int(pauses),
            "ACU-hours billed": round(bill.billed_acu_hours, 2), "cost (USD)": round(bill.cost_usd, 2)}


def plan_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """One row per cluster of a plan (what it hosts, its range, failures, pauses, bill) and a total row.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload
        >>> runs = separate_clusters({"a": ClusterConfig(), "b": ClusterConfig()},
        ...     {"a": Workload(segments=[(0, 60, 1.0)]), "b": Workload(segments=[(0, 60, 1.0)])}, duration_s=60)
        >>> plan_table(runs).index.tolist()
        ['a', 'b', 'total']
    """
    table = pd.DataFrame({cluster: _cluster_row(run) for cluster, run in runs.items()}).T
    total = {column: table[column].sum() for column in ("failed requests", "failed scalings", "pauses")}
    total |= {"databases": "", "range (ACU)": "",
              "ACU-hours billed": round(float(table["ACU-hours billed"].sum()), 2),
              "cost (USD)": round(float(table["cost (USD)"].sum()), 2)}
    table.loc["total"] = pd.Series(total)
    return table


def database_figures(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Each database's requests, failures and p95 latency (ms), whichever cluster of the plan served it."""
    frames = [run.sql("SELECT database, count(*) AS requests, count(*) FILTER (outcome <> 'ok') AS failed, "
                      "round(1000 * quantile_cont(latency_s, 0.95) FILTER (outcome = 'ok')) AS p95_ms "
                      "FROM requests GROUP BY database").df().assign(cluster=cluster)
              for cluster, run in runs.items()]
    table = pd.concat(frames).set_index("database")
    return table[["cluster", "requests", "failed", "p95_ms"]]


def compare_plans(**plans: Mapping[str, Run]) -> pd.DataFrame:
    """Each database's failures and p95 under each plan, side by side (a column pair per plan).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload
        >>> wl = {"a": Workload(segments=[(0, 60, 1.0)]), "b": Workload(segments=[(0, 60, 1.0)])}
        >>> shared = run_plan({"one": (("a", "b"), ClusterConfig())}, wl, duration_s=60)
        >>> split = separate_clusters({"a": ClusterConfig(), "b": ClusterConfig()}, wl, duration_s=60)
        >>> compare_plans(shared=shared, split=split).columns.tolist()
        ['shared: failed', 'shared: p95 (ms)', 'split: failed', 'split: p95 (ms)']
    """
    parts = []
    for label, runs in plans.items():
        figures = database_figures(runs)[["failed", "p95_ms"]]
        parts.append(figures.rename(columns={"failed": f"{label}: failed", "p95_ms": f"{label}: p95 (ms)"}))
    return pd.concat(parts, axis=1)


def plan_totals(**plans: Mapping[str, Run]) -> pd.DataFrame:
    """One row per plan: its clusters, failed requests and scalings, pauses and bill (the ``total`` of
    ``plan_table``).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload
        >>> wl = {"a": Workload(segments=[(0, 60, 1.0)])}
        >>> int(plan_totals(one=separate_clusters({"a": ClusterConfig()}, wl, duration_s=60)).loc["one", "clusters"])
        1
    """
    rows = {}
    for label, runs in plans.items():
        total = plan_table(runs).loc["total"].drop(["databases", "range (ACU)"])
        rows[label] = {"clusters": len(runs), **total.to_dict()}
    return pd.DataFrame.from_dict(rows, orient="index").infer_objects()
