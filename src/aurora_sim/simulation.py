"""``simulate()`` runs one cluster under one workload; ``Run`` holds its tables in DuckDB.

Tables (DESIGN §4): ``metrics`` (one row per period), ``events`` (the log, ``ORDER BY seq``),
``requests`` (one row per request) and ``capacity`` (every change of state or capacity, for exact
step plots).

Example:
    >>> from aurora_sim import ClusterConfig, Workload
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 2.0)]), duration_s=60, seed=1)
    >>> run.sql("SELECT count(*) FROM requests WHERE outcome = 'ok'").fetchall()[0][0] > 0
    True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
import simpy

from . import databases, facts, names
from ._validate import _check_positive, _check_range, _check_type
from ._work import MAX_DURATION_S, check_run_size
from .actions import ClusterAction, check_actions
from .cluster import Cluster
from .config import ClusterConfig, ModelAssumptions
from .models import CONFIG_TYPES
from .server import OK, QueueServer
from .tracked import Clients
from .workload import Workload

OUTCOMES = [names.OK, names.ERROR, names.TIMEOUT]  # server outcome codes 1, 2, 3
STREAMS = {"arrivals": 0, "query_cost": 1, "resume_time": 2, "jitter": 3}  # append only; never renumber
_NO_VARIATION_CV = 1e-100  # below this a cost's variation is nothing a float can show: every request costs the mean
MAX_DRAIN_S = 7 * 86_400  # requests in flight at duration_s run to completion, within this bound
MAX_REQUEST_ROWS = 5_000_000  # above this many bulk requests, the requests table keeps only those that failed


def rng_for(seed: int, purpose: str, *substream: int) -> np.random.Generator:
    """An independent random stream per purpose (and per segment), so one knob never reshuffles another.

    Example:
        >>> rng_for(7, "arrivals", 0).random() == rng_for(7, "arrivals", 0).random()
        True
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[purpose], *substream)))


def draw_arrivals(workload: Workload, seed: int, duration_s: float, *stream: int) -> np.ndarray:
    """Arrival times (sorted) of every request before ``duration_s``; ``stream`` keys a database's own draws."""
    draws = []  # (start, length, rate, count, generator or None)
    for index, (start, end, rate) in enumerate(workload.segments):
        end = min(end, duration_s)
        if rate == 0 or start >= end:
            continue
        if workload.arrivals == "regular":
            draws.append((start, end - start, rate, math.ceil((end - start) * rate - 1e-9), None))
        else:
            rng = rng_for(seed, "arrivals", index, *stream)
            draws.append((start, end - start, rate, int(rng.poisson(rate * (end - start))), rng))
    # Each segment is drawn and sorted in its place in one array: a month of requests is never held twice.
    arrival_s = np.empty(sum(draw[3] for draw in draws))
    offset = 0
    for start, length, rate, count, rng in draws:
        part = arrival_s[offset:offset + count]
        if rng is None:
            part[:] = np.arange(count)
            part /= rate
        else:
            rng.random(count, out=part)
            _sort_uniform(part)
            part *= length
        part += start
        offset += count
    return arrival_s


def _sort_uniform(values: np.ndarray) -> None:
    """Sort draws from [0, 1) in place, twice as fast as ``sort()`` for many: a radix sort on their first 16 bits
    leaves each only a few places from its own, which a merge sort then finishes in about one pass.

    The draws stay those of ``rng.random``, sorted: drawing the order statistics another way (e.g. from exponential
    spacings, five times faster) gives other arrivals for the same seed, and the scenarios' stories (which request
    fails, which exercise answer wins) were told with these.

    Example:
        >>> draws = np.random.default_rng(1).random(100_000)
        >>> expected = np.sort(draws)
        >>> _sort_uniform(draws)
        >>> bool((draws == expected).all())
        True
    """
    if len(values) < 1 << 14:
        values.sort()
        return
    buckets = (values * 65_535).astype(np.uint16)  # stable argsort of 16-bit keys is numpy's radix sort
    values[:] = values[np.argsort(buckets, kind="stable")]
    values.sort(kind="stable")


def draw_costs(workload: Workload, assumptions: ModelAssumptions, seed: int, count: int, *stream: int) -> np.ndarray:
    """Each request's CPU cost in ACU-seconds: gamma with the workload's mean and the assumed variation."""
    mean, cv = workload.query_cpu_s, assumptions.query_cost_cv
    if cv < _NO_VARIATION_CV:  # 1 / cv**2 would overflow the gamma's shape to infinity (and its draws to NaN)
        return np.full(count, mean)
    shape = 1 / cv**2
    rng = rng_for(seed, "query_cost", *stream)
    if shape == 1.0:  # the default: numpy's gamma draws exactly these exponentials, but three times slower
        draws = rng.standard_exponential(count)
        draws *= mean / shape
        return draws
    return rng.gamma(shape, mean / shape, count)


def simulate(config: ClusterConfig, workload: Workload | Mapping[str, Workload], *, duration_s: float, seed: int = 0,
             metrics_period_s: float = 60, assumptions: ModelAssumptions | None = None,
             actions: Sequence[ClusterAction] = ()) -> Run:
    """Run one cluster under one workload and return its tables.

    The cluster starts active at ``min_capacity``; scaling, pause and blocking operations unfold as
    simpy processes, while requests flow through a first-in-first-out fluid server. Every request gets a row in
    ``requests`` up to ``MAX_REQUEST_ROWS`` (5 million) requests; above that (a month of office hours), only
    those that did not end ok do, while ``metrics`` still counts every request and its latency percentiles.

    Args:
        workload: One ``Workload``, or a dict of database name → ``Workload`` for several databases on this one
            cluster (bulk traffic only): they share its CPU, connections, scaling points and pauses, and the
            ``requests`` and ``events`` tables name each row's ``database`` (NULL for one plain workload and
            for cluster-wide events).
        duration_s: Simulated seconds; requests still in flight then are run to completion.
        seed: Selects every random stream; same inputs and seed give identical tables.
        metrics_period_s: Width of one ``metrics`` row.
        assumptions: The model's undocumented knobs (defaults: ``ModelAssumptions()``).
        actions: Things scheduled to happen to the cluster (``actions.ClusterAction``: a fault, a manual capacity
            change, …), each validated against the run before it starts.

    Raises:
        ValueError: If an argument is out of range (``duration_s`` up to 366 days, ``metrics_period_s`` at least
            1 s, ``seed`` >= 0), or the run would not fit: more than ``_work.MAX_REQUESTS`` requests,
            ``_work.MAX_METRICS_ROWS`` metrics rows or about ``_work.WORK_LIMIT_S`` seconds of computing. The
            message names the parameters and the limit.
        RuntimeError: If requests are still in flight seven days after ``duration_s``.

    Example:
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 600, 1.0)]), duration_s=1200, seed=7)
        >>> run.sql("SELECT kind FROM events ORDER BY seq").fetchall()[:2]
        [('pause_started',), ('paused',)]
    """
    merged = databases.merge_workloads(workload) if isinstance(workload, Mapping) else None
    by_database, workload = (dict(workload), merged.workload) if merged else ({}, workload)
    _check_arguments(config, workload, duration_s, seed, metrics_period_s)
    assumptions = ModelAssumptions() if assumptions is None else assumptions
    _check_type("assumptions", assumptions, ModelAssumptions, "a ModelAssumptions")
    check_run_size(config, workload, assumptions, duration_s=duration_s, metrics_period_s=metrics_period_s)
    actions = check_actions(actions, config, duration_s)

    with _ordinary_pages():
        tags = None
        if merged:
            arrival_s, cost, tags = _draw_databases(by_database, merged, assumptions, seed, duration_s)
        else:
            arrival_s = draw_arrivals(workload, seed, duration_s)
            cost = draw_costs(workload, assumptions, seed, len(arrival_s))
        env = simpy.Environment()
        bulk = (np.empty(0), np.empty(0)) if workload.tracked else (arrival_s, cost)
        cluster = Cluster(env, config, workload, assumptions, *bulk, rng_for(seed, "resume_time"),
                          metrics_period_s=metrics_period_s, databases=tags)
        if not workload.tracked:
            cluster.server.finish_over_costs()  # the costs are spent as requests end: no second array of their size
        for action in actions:
            action.start(cluster)
        record = cluster.server
        if workload.tracked:
            record = Clients(env, cluster, workload, arrival_s, cost, rng_for(seed, "jitter"))
        env.run(until=duration_s)
        cluster._sync()
        cluster.record_samples_until(duration_s)  # a fast-forward in progress has not recorded its samples yet
        end_of_metrics = (cluster.total_work(), cluster.capacity_seconds)
        _drain(env, cluster, record, duration_s, workload)
        tables = _tables(cluster, record, duration_s, metrics_period_s, end_of_metrics)
        _tag_requests(tables["requests"], tags)
        return Run(config=config, workload=workload, duration_s=duration_s, seed=seed,
                   metrics_period_s=metrics_period_s, assumptions=assumptions, tables=tables,
                   databases=merged.names if merged else ())


@contextlib.contextmanager
def _ordinary_pages() -> Iterator[None]:
    """numpy allocates ordinary pages, not 2 MB huge ones, while a run draws and fills its arrays (then as before).

    A run writes its arrays once, front to back, where huge pages save little; but on a virtual machine a huge page
    costs the host 2 MB at its first touch: a month's run spent 0.4–0.8 s of system time in page faults, 0.1 s with
    ordinary pages (numpy's own switch, as ``NUMPY_MADVISE_HUGEPAGE=0`` sets it; without it, nothing changes).
    """
    switch = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    previous = switch(False)
    try:
        yield
    finally:
        switch(previous)


def _draw_databases(by_database: dict[str, Workload], merged: databases.MergedWorkloads,
                    assumptions: ModelAssumptions, seed: int,
                    duration_s: float) -> tuple[np.ndarray, np.ndarray, databases.DatabaseTags]:
    """Each database's arrivals and costs from its own streams (keyed by its name), merged in arrival order."""
    parts = []
    for name, database_workload in by_database.items():
        key = databases.stream_key(name)
        arrival_s = draw_arrivals(database_workload, seed, duration_s, key)
        parts.append((arrival_s, draw_costs(database_workload, assumptions, seed, len(arrival_s), key)))
    arrival_s, cost, code = databases.interleave(parts)
    return arrival_s, cost, databases.DatabaseTags(merged.names, code, merged.blocker_databases)


def _tag_requests(requests: pd.DataFrame, tags: databases.DatabaseTags | None) -> None:
    """The ``database`` column: each request's database, NULL for one plain workload."""
    if tags is None:
        requests["database"] = pd.Categorical.from_codes(_constant(np.int8(-1), len(requests)), categories=[])
    else:
        requests["database"] = pd.Categorical.from_codes(tags.request_code, categories=list(tags.names))


def _check_arguments(config: ClusterConfig, workload: Workload, duration_s: float, seed: int,
                     metrics_period_s: float) -> None:
    _check_type("config", config, CONFIG_TYPES, "a ClusterConfig, ServerlessV2Config or ProvisionedConfig")
    _check_type("workload", workload, Workload, "a Workload")
    _check_positive("duration_s", duration_s)
    _check_range("duration_s", duration_s, 0, MAX_DURATION_S, unit="seconds: at most 366 days")
    # CloudWatch's finest resolution is one second; finer rows would only multiply the table.
    _check_positive("metrics_period_s", metrics_period_s)
    _check_range("metrics_period_s", metrics_period_s, 1, MAX_DURATION_S, unit="seconds")
    _check_type("seed", seed, int, "an integer")
    if seed < 0:
        raise ValueError(f"seed={seed!r} must be >= 0 (numpy's SeedSequence takes a non-negative integer)")
    for index, op in enumerate(workload.blocking):
        if type(op).__name__ in facts.POSTGRESQL_ONLY_BLOCKERS and config.engine != "aurora-postgresql":
            raise ValueError(f"blocking[{index}]={op!r} is PostgreSQL-only, but config.engine={config.engine!r}")


def _drain(env: simpy.Environment, cluster: Cluster, record: QueueServer | Clients, duration_s: float,
           workload: Workload) -> None:
    """Run on until every request has ended (no new request arrives after duration_s)."""
    step, limit_s = cluster.assumptions.controller_period_s, duration_s + MAX_DRAIN_S
    while record.pending:  # a counter: scanning ten million outcomes every step would make a long drain crawl
        # Even at max_capacity the queued work needs backlog / max_capacity seconds: say so now if that is too long.
        if env.now + cluster.server.backlog_work() / cluster.config.max_capacity > limit_s or env.now >= limit_s:
            config = cluster.config
            msg = (f"requests still in flight {MAX_DRAIN_S} s (7 days) after duration_s={duration_s:g}: the cluster "
                   f"cannot finish the work it accepted (query_cpu_s={workload.query_cpu_s:g} mean per request, "
                   f"max_capacity={config.max_capacity} ACU); lower the rates or query_cpu_s, or raise max_capacity")
            raise RuntimeError(msg)
        env.run(until=env.now + step)
        cluster._sync()


def _tables(cluster: Cluster, record: QueueServer | Clients, duration_s: float, period: float,
            end_of_metrics: tuple[float, float]) -> dict[str, pd.DataFrame]:
    metrics = _metrics(cluster, record, duration_s, period, end_of_metrics)
    kept = _kept_requests(record)
    # int32 ids in the frame (the view shows BIGINT): a week's 3.6 M ids in half the memory
    request_id = np.arange(len(record.outcome), dtype=_id_dtype(len(record.outcome))) if kept is None else kept
    arrival_s, finish_s, outcome_code, error_code = (
        (record.arrival_s, record.finish_s, record.outcome, record.error) if kept is None
        else (record.arrival_s[kept], record.finish_s[kept], record.outcome[kept], record.error[kept]))
    latency = finish_s - arrival_s
    outcome = pd.Categorical.from_codes(np.subtract(outcome_code, 1, dtype=np.int8), categories=OUTCOMES)
    count = len(latency)
    if isinstance(record, Clients):
        error, attempts = pd.Categorical(error_code), record.attempts
        # Tracked requests belong to one application (client 0); the anonymous crowd has no client.
        client = pd.arrays.IntegerArray(_constant(np.int64(0), count), _constant(np.False_, count))
    else:
        messages = [facts.TOO_MANY_CONNECTIONS_ERROR[cluster.config.engine],
                    facts.FORCED_SCALING_ERROR.get((cluster.config.engine, cluster.config.engine_version), ""),
                    facts.STATEMENT_TIMEOUT_ERROR,  # in the order of server.TOO_MANY_CONNECTIONS, … (codes 1, 2, 3)
                    facts.LOST_CONNECTION_ERROR[cluster.config.engine],  # a fault (faults.py): codes 4 and 5
                    facts.CANNOT_CONNECT_ERROR[cluster.config.engine]]
        error = pd.Categorical.from_codes(np.subtract(error_code, 1, dtype=np.int8), categories=messages)
        attempts = _constant(np.int32(1), count)
        client = pd.arrays.IntegerArray(_constant(np.int64(0), count), _constant(np.True_, count))  # NULL
    # copy=False: pandas would otherwise copy the float columns into one block (3.6 M rows: 0.3 s).
    requests = pd.DataFrame({
        "request_id": request_id, "client_id": client, "submitted_s": arrival_s,
        "finished_s": finish_s, "latency_s": latency, "attempts": attempts, "outcome": outcome,
        "error": error,
    }, copy=False)
    events = pd.DataFrame(cluster.events, columns=["time_s", "kind", "capacity_from", "capacity_to", "message",
                                                   "database"])
    events["time_s"] = events["time_s"].astype(float)
    events["database"] = pd.Categorical(events["database"])  # NULL for cluster-wide events
    events.insert(0, "seq", np.arange(len(events), dtype=np.int64))
    events.insert(3, "rds_event_id", events["kind"].map(cluster.policy.rds_event_ids))  # v2: none (models.py)
    for column in ("capacity_from", "capacity_to"):
        events[column] = events[column].astype("Int64" if cluster.policy.whole_acu else "Float64")
    capacity = pd.DataFrame(cluster.capacity_log, columns=["time_s", "state", "capacity_acu"])
    capacity["time_s"] = capacity["time_s"].astype(float)
    capacity.insert(0, "seq", np.arange(len(capacity), dtype=np.int64))
    return {"metrics": metrics, "events": events, "requests": requests, "capacity": capacity}


def _id_dtype(count: int) -> type:
    return np.int32 if count < 2**31 else np.int64


def _constant(value: np.generic, count: int) -> np.ndarray:
    """A column of ``count`` copies of ``value``, in memory of its own. Not a stride-0 view: pandas 2.3 and DuckDB
    read a masked column's buffers as contiguous, and a view's one element then read as garbage past it.

    Example:
        >>> column = _constant(np.int32(1), 3)
        >>> column.tolist(), column.dtype.name
        ([1, 1, 1], 'int32')
    """
    return np.full(count, value, dtype=np.asarray(value).dtype)


def _kept_requests(record: QueueServer | Clients) -> np.ndarray | None:
    """Which requests get a row: all (None), or above ``MAX_REQUEST_ROWS`` bulk requests only those that did not
    end ok (DESIGN §4: bulk traffic may live in ``metrics`` only; tracked clients always keep every row)."""
    if isinstance(record, Clients) or len(record.outcome) <= MAX_REQUEST_ROWS:
        return None
    return np.flatnonzero(record.outcome != OK)


def _metrics(cluster: Cluster, server: QueueServer | Clients, duration_s: float, period: float,
             end_of_metrics: tuple[float, float]) -> pd.DataFrame:
    rows = math.ceil(duration_s / period - 1e-9)
    samples = pd.DataFrame(cluster.samples[:rows], columns=["time_s", "state", "capacity_acu", "connections",
                                                            "max_connections", "work", "capacity_s"])
    work = np.append(samples["work"].to_numpy(), end_of_metrics[0])
    capacity_s = np.append(samples["capacity_s"].to_numpy(), end_of_metrics[1])
    served = np.diff(capacity_s)
    cpu = np.divide(100 * np.diff(work), served, out=np.zeros(rows), where=served > 0)
    failed_slot = np.floor(server.finish_s[server.outcome > OK] / period).astype(np.int64)
    failed = np.bincount(failed_slot[failed_slot < rows], minlength=rows)
    completed, (p50, p95) = _latency_by_slot(server, rows, period, (0.50, 0.95))
    return pd.DataFrame({
        "time_s": samples["time_s"].astype(float), "state": samples["state"], "capacity_acu": samples["capacity_acu"],
        "cpu_pct": np.minimum(cpu, 100.0), "connections": samples["connections"],
        "max_connections": samples["max_connections"], "requests_completed": completed,
        "requests_failed": failed, "p50_latency_ms": p50 * 1000, "p95_latency_ms": p95 * 1000,
    }, copy=False)


_CHUNK = 1 << 17  # requests whose latencies are sorted at a time: small enough for the cache, large enough for numpy


def _latency_by_slot(server: QueueServer | Clients, rows: int, period: float,
                     quantiles: tuple[float, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Requests completed ok in each metrics slot, and their latency quantiles (NaN where none finished)."""
    if isinstance(server, QueueServer):
        in_chunks = _latency_in_chunks(server, rows, period, quantiles)
        if in_chunks is not None:
            return in_chunks
    slot, latency = _ok_slots(server, 0, len(server.outcome), rows, period)
    return np.bincount(slot, minlength=rows), _percentiles_by_slot(slot, latency, rows, quantiles)


def _latency_in_chunks(server: QueueServer, rows: int, period: float,
                       quantiles: tuple[float, ...]) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """``_latency_by_slot`` a chunk of requests at a time, so a month never holds its latencies twice.

    A first-in-first-out server finishes its ok requests in order: each slot's requests follow one another, found
    by a search for the slot's start, and every slot before a chunk's last is complete (the last one may go on in
    the next chunks, whose latencies it keeps until it ends). None if they turn out not to be in order.
    """
    completed = np.zeros(rows, dtype=np.int64)
    result = [np.full(rows, np.nan) for _ in quantiles]
    count = len(server.outcome)
    carried: list[np.ndarray] = []  # the latencies so far of the slot the last chunk ended in
    carried_slot = -1
    buffer = np.empty(min(count, _CHUNK))

    def complete(slot: int, latency: np.ndarray) -> None:
        completed[slot] = len(latency)
        _group_percentiles(latency, np.zeros(1, dtype=np.int64), np.array([len(latency)]), np.array([slot]),
                           quantiles, result)

    for begin in range(0, count, _CHUNK):
        finish, arrival = _ended_ok(server, begin, min(count, begin + _CHUNK))
        if not len(finish):
            continue
        if (finish[1:] < finish[:-1]).any() or math.floor(finish[0] / period) < carried_slot:
            return None
        latency = np.subtract(finish, arrival, out=buffer[:len(finish)])
        slots, starts, stop = _slot_starts(finish, period, rows)
        last = begin + _CHUNK >= count or stop < len(finish)  # no later chunk adds to these slots
        if carried and len(slots) and slots[0] == carried_slot:  # the carried slot goes on in this chunk
            if len(slots) == 1 and not last:
                carried.append(latency.copy())
                continue
            complete(carried_slot, np.concatenate([*carried, latency[:starts[1] if len(slots) > 1 else stop]]))
            slots, starts = slots[1:], starts[1:]
        elif carried:
            complete(carried_slot, np.concatenate(carried))
        carried, carried_slot = [], -1
        ends = np.append(starts[1:], stop)
        keep = len(slots) if last else len(slots) - 1
        completed[slots[:keep]] = ends[:keep] - starts[:keep]
        _group_percentiles(latency, starts[:keep], ends[:keep] - starts[:keep], slots[:keep], quantiles, result)
        if keep < len(slots):
            carried, carried_slot = [latency[starts[-1]:].copy()], int(slots[-1])
        if stop < len(finish):  # the rest finished after the metrics' end
            break
    if carried:
        complete(carried_slot, np.concatenate(carried))
    return completed, result


def _ended_ok(server: QueueServer, begin: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Finish and arrival times of the requests in ``begin:end`` that ended ok (views when all did)."""
    ok = server.outcome[begin:end] == OK
    if ok.all():
        return server.finish_s[begin:end], server.arrival_s[begin:end]
    return server.finish_s[begin:end][ok], server.arrival_s[begin:end][ok]


def _slot_starts(finish: np.ndarray, period: float, rows: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The metrics slots below ``rows`` that times in order (``finish``) fall in, where each starts, and where the
    times at or after slot ``rows`` start: slot k holds the times whose ``floor(time / period)`` is k.

    Example:
        >>> [part.tolist() if hasattr(part, "tolist") else part
        ...  for part in _slot_starts(np.array([0.5, 0.9, 2.1, 2.2, 9.0]), 1.0, 5)]
        [[0, 2], [0, 2], 4]
    """
    first, last = math.floor(finish[0] / period), min(math.floor(finish[-1] / period), rows)
    if first >= rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), 0
    slots = np.arange(first, last + 1)
    starts = finish.searchsorted(slots * period, side="left")
    # slot * period may have rounded: move each start to where floor(time / period) reaches its slot.
    while True:
        back = (starts > 0) & (np.floor(finish[np.maximum(starts - 1, 0)] / period) >= slots)
        ahead = (starts < len(finish)) & (np.floor(finish[np.minimum(starts, len(finish) - 1)] / period) < slots)
        if not (back.any() or ahead.any()):
            break
        starts = starts - back + ahead
    stop = len(finish)
    if slots[-1] == rows:
        slots, starts, stop = slots[:-1], starts[:-1], int(starts[-1])
    nonempty = np.append(starts[1:], stop) > starts
    return slots[nonempty], starts[nonempty], stop


def _group_percentiles(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, slots: np.ndarray,
                       quantiles: tuple[float, ...], result: list[np.ndarray]) -> None:
    """The quantiles of consecutive groups of ``values`` (group g: ``counts[g]`` values from ``starts[g]``), into
    ``result[q][slots[g]]``: each block of groups sorted as the rows of a matrix padded with inf."""
    if not len(counts):
        return
    for block in _blocks_of_slots(counts):
        block_counts = counts[block]
        width = int(block_counts.max())
        matrix = np.full((len(block), width), np.inf)
        filled = np.arange(width) < block_counts[:, None]  # row by row, the values of one group each
        matrix[filled] = values[starts[block[0]]:starts[block[-1]] + counts[block[-1]]]
        for out, found in zip(result, _row_quantiles(matrix, block_counts, quantiles), strict=True):
            out[slots[block]] = found


def _row_quantiles(matrix: np.ndarray, counts: np.ndarray, quantiles: tuple[float, ...]) -> list[np.ndarray]:
    """Linear-interpolated quantiles of each row's first ``counts`` values (the rest of each row is inf).

    The rows are sorted as float32 keys, twice as fast as float64: rounding keeps the order, so the value whose key
    is alone at a rank is the value of that rank, found by its key in the unsorted row. A row where others share
    the key is sorted as float64. The quantiles are those of a float64 sort, to the last bit.

    Example:
        >>> matrix = np.array([[3.0, 1.0, 2.0, np.inf], [1.0, 1.0 + 1e-12, 1.0 - 1e-12, 7.0]])
        >>> [q.tolist() for q in _row_quantiles(matrix, np.array([3, 4]), (0.5, 1.0))]
        [[2.0, 1.0000000000005], [3.0, 7.0]]
    """
    keys = matrix.astype(np.float32)
    ordered = np.sort(keys, axis=1)
    index, last = np.arange(len(counts)), matrix.shape[1] - 1

    def value_at(rank: np.ndarray) -> np.ndarray:
        key = ordered[index, rank]
        shared = (((rank > 0) & (ordered[index, np.maximum(rank - 1, 0)] == key))
                  | ((rank < last) & (ordered[index, np.minimum(rank + 1, last)] == key)) | ~np.isfinite(key))
        value = matrix[index, (keys == key[:, None]).argmax(axis=1)]
        if shared.any():
            value[shared] = np.sort(matrix[shared], axis=1)[np.arange(int(shared.sum())), rank[shared]]
        return value

    result = []
    for q in quantiles:
        position = q * (counts - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, counts - 1)
        low_value, high_value = value_at(low), value_at(high)
        result.append(low_value + (high_value - low_value) * (position - low))
    return result


def _ok_slots(server: QueueServer | Clients, begin: int, end: int, rows: int,
              period: float) -> tuple[np.ndarray, np.ndarray]:
    """The metrics slot and the latency of each request in ``begin:end`` that ended ok within the metrics."""
    ok = server.outcome[begin:end] == OK
    every_one_ok = bool(ok.all())  # the usual case: no copies
    finish_s = server.finish_s[begin:end] if every_one_ok else server.finish_s[begin:end][ok]
    arrival_s = server.arrival_s[begin:end] if every_one_ok else server.arrival_s[begin:end][ok]
    latency = finish_s - arrival_s
    slot = finish_s / period
    slot = np.floor(slot, out=slot).astype(np.int64)
    in_range = slot < rows
    if not in_range.all():
        slot, latency = slot[in_range], latency[in_range]
    return slot, latency


def _percentiles_by_slot(slot: np.ndarray, values: np.ndarray, slots: int, quantiles: tuple[float, ...],
                         out: list[np.ndarray] | None = None, *, in_order: bool = False) -> list[np.ndarray]:
    """Linear-interpolated quantiles of ``values`` within each slot (NaN where a slot is empty).

    Example:
        >>> _percentiles_by_slot(np.array([0, 0, 0, 2]), np.array([3.0, 1.0, 2.0, 5.0]), 3, (0.5, 1.0))
        [array([ 2., nan,  5.]), array([ 3., nan,  5.])]
    """
    if not in_order and len(slot) > 1 and (slot[1:] < slot[:-1]).any():  # tracked requests may finish out of order
        order = np.argsort(slot, kind="stable")
        slot, values = slot[order], values[order]
    counts = np.bincount(slot, minlength=slots)
    ends = np.cumsum(counts)
    result = [np.full(slots, np.nan) for _ in quantiles] if out is None else out
    for rows in _blocks_of_slots(counts):
        begin, end = ends[rows[0]] - counts[rows[0]], ends[rows[-1]]
        _block_percentiles(values[begin:end], slot[begin:end], rows, counts[rows], quantiles, result)
    return result


_BLOCK_CELLS = 1 << 21  # the padded matrix one block of slots is sorted in (16 MB)


def _blocks_of_slots(counts: np.ndarray) -> list[np.ndarray]:
    """The non-empty slots in consecutive groups whose padded matrix (slots × largest count) stays near
    ``_BLOCK_CELLS``: sorting many short rows is four times faster than sorting all values at once."""
    nonempty = np.flatnonzero(counts)
    if not len(nonempty):
        return []
    per_block = max(1, _BLOCK_CELLS // max(1, int(np.median(counts[nonempty]))))
    pending = [nonempty[k:k + per_block] for k in range(0, len(nonempty), per_block)]
    blocks = []
    while pending:
        block = pending.pop()
        if len(block) > 1 and int(counts[block].max()) * len(block) > 4 * _BLOCK_CELLS:  # a few very full slots
            half = len(block) // 2
            pending += [block[half:], block[:half]]
        else:
            blocks.append(block)
    return blocks


def _block_percentiles(values: np.ndarray, slot: np.ndarray, rows: np.ndarray, counts: np.ndarray,
                       quantiles: tuple[float, ...], result: list[np.ndarray]) -> None:
    """Sort one block's slots as the rows of a matrix padded with inf, and read each quantile off its row."""
    width = int(counts.max())
    matrix = np.full((len(rows), width), np.inf)
    # Value k of row r goes to r * width + (k - the row's first value): one gather per value.
    shift = np.zeros(int(rows[-1]) - int(rows[0]) + 1, dtype=np.int64)
    shift[rows - rows[0]] = np.arange(len(rows)) * width - (np.cumsum(counts) - counts)
    place = shift[slot - rows[0]]
    place += np.arange(len(values))
    matrix.ravel()[place] = values
    for out, found in zip(result, _row_quantiles(matrix, counts, quantiles), strict=True):
        out[rows] = found


_DATABASE: list[duckdb.DuckDBPyConnection] = []


def _new_connection() -> duckdb.DuckDBPyConnection:
    """A connection of its own for one run, opened on one shared in-memory database: ``cursor()`` takes 0.1 ms
    where ``duckdb.connect()`` takes 10 ms, a widget callback's margin. Registered frames and TEMP views belong
    to the connection, so runs never see each other's tables."""
    if not _DATABASE:
        _DATABASE.append(duckdb.connect())
    connection = _DATABASE[0].cursor()
    connection.execute("SET enable_progress_bar = false")  # a bar would print into notebook output
    return connection


class Run:
    """One simulation's inputs and its DuckDB tables; ``sql()`` queries them by name.

    Example:
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 1.0)]), duration_s=60, seed=2)
        >>> run
        Run(seed=2, duration_s=60, metrics=1, events=0, requests=71)
    """

    def __init__(self, *, config: ClusterConfig, workload: Workload, duration_s: float, seed: int,
                 metrics_period_s: float, assumptions: ModelAssumptions,
                 tables: dict[str, pd.DataFrame], databases: tuple[str, ...] = ()) -> None:
        self.config, self.workload, self.assumptions = config, workload, assumptions
        self.databases = databases  # the names of the databases on the cluster; () for one plain workload
        self.duration_s, self.seed, self.metrics_period_s = duration_s, seed, metrics_period_s
        self._frames = tables  # the views below scan these frames in place: no copy (360 k rows: 4 ms vs 50 ms)
        self._counts = {name: len(frame) for name, frame in tables.items()}
        self._connection: duckdb.DuckDBPyConnection | None = None

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        """The run's DuckDB connection with its views, opened at the first query: a panel that reads the frames
        only never pays for it (10 ms of a 1-h sale's 60)."""
        if self._connection is None:
            connection = _new_connection()
            for name, frame in self._frames.items():
                connection.register(f"_{name}", frame)
                # Categoricals and int32 ids keep the frames small; the tables show plain text and BIGINT.
                casts = [f"CAST({c} AS VARCHAR) AS {c}" for c in frame.columns
                         if isinstance(frame[c].dtype, pd.CategoricalDtype)]
                casts += [f"CAST({c} AS BIGINT) AS {c}" for c in frame.columns if frame[c].dtype == np.int32
                          and c.endswith("_id")]
                replace = f" REPLACE ({', '.join(casts)})" if casts else ""
                connection.execute(f"CREATE TEMP VIEW {name} AS SELECT *{replace} FROM _{name}")
            self._connection = connection
        return self._connection

    def frame(self, name: str) -> pd.DataFrame:
        """The frame behind table ``name``, read in place without DuckDB: its rows in log order, text columns as
        categoricals and ids as int32 where the table shows VARCHAR and BIGINT. Read it; never change it (the
        table's view scans this very frame).

        Example:
            >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 1.0)]), duration_s=60, seed=2)
            >>> len(run.frame("requests")), list(run.frame("capacity").columns)
            (71, ['seq', 'time_s', 'state', 'capacity_acu'])
        """
        if name not in self._frames:
            msg = f"name={name!r} is not one of the run's tables: {', '.join(self._frames)}"
            raise ValueError(msg)
        return self._frames[name]

    def sql(self, query: str, params: object = None) -> duckdb.DuckDBPyRelation:
        """Query the run's tables (``metrics``, ``events``, ``requests``, ``capacity``)."""
        if params is None:
            return self._con.sql(query)
        return self._con.sql(query, params=params)

    def __repr__(self) -> str:
        counts = self._counts
        return (f"Run(seed={self.seed}, duration_s={self.duration_s:g}, metrics={counts['metrics']}, "
                f"events={counts['events']}, requests={counts['requests']})")
