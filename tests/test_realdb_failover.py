"""Notebook 09's live part: a real PostgreSQL crashed under its clients and restarted on the same data folder."""

from __future__ import annotations

from aurora_sim.realdb import failover, in_ci


def test_crash_keeps_committed_rows_drops_open_ones_and_the_client_recovers() -> None:
    result = failover.crash_demo(down_s=0.5)
    if not result.available:  # crash_demo raises under CI instead: the live part never skips there
        assert not in_ci()
        return
    assert (result.committed_after, result.open_after) == (failover.COMMITTED_ORDERS, 0)
    assert result.attempts and result.attempts[-1].outcome.startswith("placed")
    assert any("Connection refused" in a.outcome or "starting up" in a.outcome for a in result.attempts[:-1])
    outcomes = dict(result.steps)
    assert "server closed the connection unexpectedly" in outcomes["pool without a check: borrow, SELECT 1"]
    assert outcomes["pool with check=ConnectionPool.check_connection: borrow, SELECT 1"].startswith("returned 1")
    assert any("automatic recovery" in line for line in result.recovery_log)


def test_a_demo_copies_the_cached_cluster_and_leaves_no_folder_behind(monkeypatch) -> None:
    import tempfile
    import time
    from pathlib import Path

    if not failover.crash_demo(down_s=0.2).available:  # builds the cached cluster if it is missing
        return
    monkeypatch.setattr(failover, "_initdb", lambda *_: (_ for _ in ()).throw(AssertionError("initdb ran again")))
    before = set(Path(tempfile.gettempdir()).glob("aurora-crash-*"))
    result = failover.crash_demo(down_s=0.2)
    assert result.committed_after == failover.COMMITTED_ORDERS
    mine = set(Path(tempfile.gettempdir()).glob("aurora-crash-*")) - before
    deadline = time.monotonic() + 30  # deleted by a process of its own, without making the notebook wait
    while any(folder.exists() for folder in mine) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(folder.exists() for folder in mine)
