"""Read a run's tables as lists of dicts: the helpers every behavioural test file shares."""

from __future__ import annotations


def rows(run, query: str) -> list[dict]:
    relation = run.sql(query)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def events(run, kind=None) -> list[dict]:
    """The event log as dicts, in ``seq`` order (optionally one kind only)."""
    where = "" if kind is None else f"WHERE kind = '{kind}'"
    return rows(run, "SELECT seq, time_s, kind, rds_event_id, capacity_from, capacity_to, message FROM events "
                     f"{where} ORDER BY seq")


def times(run, kind) -> list[float]:
    return [e["time_s"] for e in events(run, kind)]


def requests(run, where="TRUE") -> list[dict]:
    return rows(run, f"SELECT * FROM requests WHERE {where} ORDER BY request_id")
