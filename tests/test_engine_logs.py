"""Engine logs produced by a run: a line for every statement that qualifies and none for one that does not, in the
engine's own format, under the parameters that switch each log on; and the real server's log for comparison."""

from __future__ import annotations

import re

import pytest

from aurora_sim import (
    ClusterConfig,
    LongQuery,
    LongTransaction,
    TableLock,
    Workload,
    engine_logs,
    facts,
    realdb,
    scenarios,
    simulate,
)
from aurora_sim.engine_logs import Session
from aurora_sim.realdb import server_log

MYSQL_SLOW_ENTRY = re.compile(
    r"^# Time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\n# User@Host: (\w+)\[\1\] @  \[[\d.]+\]  Id: +\d+\n"
    r"# Query_time: (\d+\.\d{6})  Lock_time: (\d+\.\d{6}) Rows_sent: \d+  Rows_examined: \d+\n"
    r"SET timestamp=\d+;\n.+;$")
POSTGRESQL_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:(?:[\d.]+\(\d+\))?:[\w\[\]]*@[\w\[\]]*:\[\d+\]:"
                             r"(LOG|DETAIL|CONTEXT|STATEMENT|ERROR|FATAL):  .+$")

REPORT = Session(user="reporting", statement="SELECT region, sum(total) FROM orders GROUP BY region",
                 uses_index=False, rows_sent=12, rows_examined=500_000)
QUICK = Session(user="quick", statement="SELECT count(*) FROM orders", statement_s=0.5)


def _two_queries(engine: str = "aurora-mysql"):
    """Quiet traffic and two long queries: 20 s from minute 1 and 5 s from minute 3, never paused."""
    return simulate(ClusterConfig(engine=engine, auto_pause=False),
                    Workload(segments=[(0, 600, 0.5)], query_cpu_s=0.01,
                             blocking=[LongQuery(start_s=60, duration_s=20), LongQuery(start_s=180, duration_s=5)]),
                    duration_s=600, seed=3)


@pytest.fixture(scope="module")
def two_queries():
    return _two_queries()


# --- MySQL slow query log ------------------------------------------------------------------------------------------


def test_a_slow_log_entry_per_statement_over_long_query_time_and_none_for_a_fast_one(two_queries) -> None:
    slow = engine_logs.tables(two_queries, {"slow_query_log": 1, "long_query_time": 10},
                              sessions=[REPORT, QUICK])["slowquery"]
    assert slow["user"].tolist() == ["reporting"], f"only the 20-s query is over 10 s; got {slow['user'].tolist()}"
    assert slow["query_time_s"].iloc[0] == pytest.approx(20.0)
    match = MYSQL_SLOW_ENTRY.match(slow["message"].iloc[0])
    assert match, f"not a MySQL slow-log entry:\n{slow['message'].iloc[0]}"
    assert float(match.group(2)) == pytest.approx(20.0)
    assert slow["message"].iloc[0].endswith(REPORT.statement + ";")
    assert slow["time_s"].iloc[0] == pytest.approx(80.0), "an entry is written when the statement ends"


def test_a_lower_long_query_time_logs_both_long_queries_and_no_request(two_queries) -> None:
    slow = engine_logs.tables(two_queries, {"slow_query_log": 1, "long_query_time": 2}, sessions=[REPORT, None])
    assert sorted(slow["slowquery"]["query_time_s"].round(3)) == [5.0, 20.0]


def test_long_query_time_zero_logs_every_statement(two_queries) -> None:
    slow = engine_logs.tables(two_queries, {"slow_query_log": 1, "long_query_time": 0})["slowquery"]
    served = two_queries.sql("SELECT count(*) FROM requests WHERE outcome = 'ok'").fetchall()[0][0]
    assert len(slow) == served + 2, "every request's statement and both long queries"


def test_no_slow_log_unless_slow_query_log_is_on(two_queries) -> None:
    assert len(engine_logs.tables(two_queries, {"long_query_time": 0})["slowquery"]) == 0


def test_queries_not_using_indexes_are_logged_however_fast(two_queries) -> None:
    unindexed = Session(user="scanner", statement="SELECT * FROM orders", statement_s=0.5, uses_index=False)
    slow = engine_logs.tables(two_queries, {"slow_query_log": 1, "log_queries_not_using_indexes": 1},
                              sessions=[REPORT, unindexed])["slowquery"]
    assert sorted(slow["user"]) == ["reporting", "scanner"]


def test_waiting_for_a_resume_is_not_query_time() -> None:
    run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 1.0), (1500, 1560, 1.0)]), duration_s=1800, seed=2)
    waited = run.sql("SELECT max(latency_s) FROM requests").fetchall()[0][0]
    assert waited > 10, "the request after the pause waits through a cold start"
    slow = engine_logs.tables(run, {"slow_query_log": 1, "long_query_time": 10})["slowquery"]
    assert slow.empty, f"a {waited:.0f}-s wait for the resume was logged as a slow query"


# --- MySQL general, audit and error logs ---------------------------------------------------------------------------


def test_general_log_connect_query_quit_per_served_request(two_queries) -> None:
    general = engine_logs.tables(two_queries, {"general_log": 1})["general"]
    served = two_queries.sql("SELECT count(*) FROM requests WHERE outcome = 'ok'").fetchall()[0][0]
    counts = general["command"].value_counts().to_dict()
    assert counts == {"Connect": served + 2, "Query": served + 2, "Quit": served + 2}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\t +\d+ Connect\t\w+@[\d.]+ on shop using TCP/IP$",
                    general["message"].iloc[0])


def test_a_transaction_logs_begin_and_commit_in_the_general_log() -> None:
    run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 300, 0.0)],
                   blocking=[LongTransaction(start_s=30, duration_s=200)]), duration_s=300, seed=1)
    general = engine_logs.tables(run, {"general_log": 1})["general"]
    queries = general[general["command"] == "Query"]
    assert queries["argument"].iloc[0] == "BEGIN" and queries["argument"].iloc[-1] == "COMMIT"
    assert queries["time_s"].iloc[-1] == pytest.approx(230.0, abs=0.01)


def test_audit_logs_only_the_events_listed(two_queries) -> None:
    ddl = engine_logs.tables(two_queries, {"server_audit_logging": 1, "server_audit_events": "QUERY_DDL"})["audit"]
    assert ddl.empty, "no DDL ran"
    audit = engine_logs.tables(two_queries, {"server_audit_logging": 1, "server_audit_events": "CONNECT,QUERY"},
                               sessions=[REPORT, QUICK])["audit"]
    assert set(audit["operation"]) == {"CONNECT", "DISCONNECT", "QUERY"}
    line = audit[(audit["user"] == "reporting") & (audit["operation"] == "QUERY")]["message"].iloc[0]
    assert re.match(r"^\d{16},[\w-]+,reporting,[\d.]+,\d+,\d+,QUERY,shop,'SELECT region.*',0$", line), line


def test_error_log_records_the_engine_starting_after_a_resume() -> None:
    run = scenarios.office_day().run()
    error = engine_logs.tables(run)["error"]
    resumes = run.sql("SELECT count(*) FROM events WHERE kind = 'resumed'").fetchall()[0][0]
    assert (error["text"] == "mysqld: ready for connections.").sum() >= resumes


# --- PostgreSQL: one log, the server's own -------------------------------------------------------------------------


def test_postgresql_logs_a_duration_line_per_statement_over_the_threshold() -> None:
    run = _two_queries("aurora-postgresql")
    log = engine_logs.tables(run, {"log_min_duration_statement": 10_000}, sessions=[REPORT, QUICK])["error"]
    durations = log[log["text"].str.startswith("duration:")]
    assert durations["user"].tolist() == ["reporting"]
    assert durations["text"].iloc[0] == f"duration: 20000.000 ms  statement: {REPORT.statement}"
    assert all(POSTGRESQL_LINE.match(line) for line in log["message"]), "every line in RDS's log_line_prefix format"
    off = engine_logs.tables(run, sessions=[REPORT, QUICK])["error"]
    assert not off["text"].str.startswith("duration:").any(), "log_min_duration_statement is -1 by default"


def test_postgresql_always_logs_connections_and_disconnections() -> None:
    run = _two_queries("aurora-postgresql")
    log = engine_logs.tables(run)["error"]
    served = run.sql("SELECT count(*) FROM requests WHERE outcome = 'ok'").fetchall()[0][0]
    assert log["text"].str.startswith("connection received").sum() == served + 2
    assert log["text"].str.startswith("disconnection: session time:").sum() == served + 2


def _lock_run(wait_s: float):
    """A table lock held from minute 1 for 120 s, and a second session asking for the same table ``wait_s`` before
    it is released."""
    first, second = TableLock(start_s=60, duration_s=120), TableLock(start_s=180 - wait_s, duration_s=60)
    return simulate(ClusterConfig(engine="aurora-postgresql", auto_pause=False),
                    Workload(segments=[(0, 400, 0.0)], blocking=[first, second]), duration_s=400, seed=1)


def test_a_lock_wait_is_logged_once_it_passes_deadlock_timeout() -> None:
    run = _lock_run(wait_s=30)
    log = engine_logs.tables(run, {"log_lock_waits": 1})["error"]
    waiting = log[log["text"].str.contains("still waiting for")]
    assert len(waiting) == 1
    # The LOCK TABLE follows its BEGIN by a moment; it waits from then until the first lock is released at 180 s.
    assert waiting["time_s"].iloc[0] == pytest.approx(150 + facts.DEFAULT_DEADLOCK_TIMEOUT_MS / 1000, abs=0.01)
    acquired = log[log["text"].str.contains(" acquired ")]
    assert re.search(r"after 299\d\d\.\d{3} ms$", acquired["text"].iloc[0]), acquired["text"].iloc[0]
    assert acquired["time_s"].iloc[0] == pytest.approx(180)
    assert "Process holding the lock" in log[log["severity"] == "DETAIL"]["text"].iloc[0]


def test_no_lock_wait_line_below_deadlock_timeout_or_with_log_lock_waits_off() -> None:
    short = engine_logs.tables(_lock_run(wait_s=0.5), {"log_lock_waits": 1})["error"]
    assert not short["text"].str.contains("still waiting").any(), "0.5 s is under the 1-s deadlock_timeout"
    off = engine_logs.tables(_lock_run(wait_s=30))["error"]
    assert not off["text"].str.contains("still waiting").any()


def test_log_statement_mod_logs_writes_not_reads() -> None:
    run = _two_queries("aurora-postgresql")
    writer = Session(user="writer", statement="UPDATE orders SET total = 0 WHERE order_id = 1", statement_s=1.0)
    log = engine_logs.tables(run, {"log_statement": "mod"}, sessions=[REPORT, writer])["error"]
    statements = log[log["text"].str.startswith("statement:")]["text"].tolist()
    assert statements == [f"statement: {writer.statement}"]


def test_temporary_files_over_log_temp_files_are_logged() -> None:
    run = _two_queries("aurora-postgresql")
    sorter = Session(user="sorter", statement="SELECT * FROM orders ORDER BY total", temp_file_kb=2048)
    log = engine_logs.tables(run, {"log_temp_files": 1024}, sessions=[sorter, QUICK])["error"]
    assert log["text"].str.match(r'temporary file: path "base/pgsql_tmp/pgsql_tmp\d+\.0", size 2097152').sum() == 1
    none = engine_logs.tables(run, {"log_temp_files": 4096}, sessions=[sorter, QUICK])["error"]
    assert not none["text"].str.startswith("temporary file").any()


# --- Parameters, log groups and the run's database -----------------------------------------------------------------


@pytest.mark.parametrize(("engine", "parameters", "message"), [
    ("aurora-mysql", {"log_min_duration_statement": 100}, "not a log parameter of aurora-mysql (it is an "
                                                         "aurora-postgresql parameter)"),
    ("aurora-mysql", {"slow_query_log": 2}, "parameters['slow_query_log']=2 must be 0 (off) or 1 (on)"),
    ("aurora-mysql", {"long_query_time": 31_536_001}, "must be seconds within 0..31,536,000"),
    ("aurora-mysql", {"server_audit_events": "CONNECT,LOGIN"}, "must list events from"),
    ("aurora-postgresql", {"log_statement": "everything"}, "must be one of ('none', 'ddl', 'mod', 'all')"),
    ("aurora-postgresql", {"log_min_duration_statement": -2}, "must be -1 (off) or a whole number >= 0"),
    ("aurora-postgresql", {"deadlock_timeout": 0}, "must be milliseconds > 0"),
    ("aurora-postgresql", {"log_connections": 0}, "on in Aurora Serverless v1 and not modifiable"),
    ("aurora-postgresql", {"general_log": 1}, "not a log parameter of aurora-postgresql (it is an aurora-mysql"),
])
def test_log_parameters_are_checked(engine: str, parameters: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        engine_logs.log_parameters(engine, parameters)


def test_log_groups_follow_the_documented_names(two_queries) -> None:
    logs = engine_logs.tables(two_queries, {"general_log": 1}, cluster="shop")
    assert set(logs) == set(facts.LOG_TYPES["aurora-mysql"])
    assert logs["general"]["log_group"].iloc[0] == "/aws/rds/cluster/shop/general"


def test_publish_makes_every_log_queryable_in_sql() -> None:
    run = _two_queries()
    groups = engine_logs.publish(run, {"slow_query_log": 1, "long_query_time": 10}, sessions=[REPORT, QUICK])
    assert run.sql("SELECT user FROM log_slowquery").fetchall() == [("reporting",)]
    assert run.sql("SELECT count(*) FROM log_events").fetchall()[0][0] == int(groups["events"].sum())
    assert groups.loc["general", "published because"] == "not published: general_log=0"


def test_sessions_must_be_sessions(two_queries) -> None:
    with pytest.raises(ValueError, match=re.escape("sessions[0]='reporting' must be a Session or None")):
        engine_logs.tables(two_queries, sessions=["reporting"])
    with pytest.raises(ValueError, match="statement_s=0 must be > 0"):
        Session(user="x", statement="SELECT 1", statement_s=0)


def test_the_night_shows_the_culprit_only_in_the_general_log() -> None:
    """The night's story: the slow query log never shows the report's open transaction; the general log does."""
    run = scenarios.night_shift().run()
    logs = engine_logs.tables(run, {**scenarios.NIGHT_LOG_PARAMETERS, "general_log": 1},
                              sessions=scenarios.night_sessions())
    assert "reporting" not in set(logs["slowquery"]["user"])
    report = logs["general"][logs["general"]["connection_id"] == 101]
    assert report["argument"].iloc[1] == "BEGIN" and report["argument"].iloc[-2] == "COMMIT"


# --- The real server ---------------------------------------------------------------------------------------------


def test_the_real_server_logs_the_slow_statement_and_the_lock_wait() -> None:
    with realdb.server() as pg:
        if not pg.available:  # under CI realdb.server() raises instead
            pytest.skip(pg.reason)
        if pg.log_path is None:  # a server named by AURORA_WORKBOOK_PG_DSN: its log is on another host
            if realdb.in_ci():
                pytest.fail("the server's log is not readable here; CI is set, so this is a failure")
            pytest.skip("the server's log is not readable here")
        live = server_log.slow_statement_and_lock_wait(pg.dsn, pg.log_path)
    lines = live.lines
    slow = lines[lines["session"] == "slow statement"]
    assert len(slow) == 1, f"one line for the slow statement and none for the fast one, got {slow['text'].tolist()}"
    assert re.match(r"duration: \d+\.\d{3} ms  statement: SELECT pg_sleep\(0\.4\)", slow["text"].iloc[0])
    waits = lines[lines["session"] == "lock wait"]["text"]
    assert waits.str.contains("still waiting for ShareLock on transaction").any()
    assert waits.str.contains("acquired ShareLock on transaction").any()
