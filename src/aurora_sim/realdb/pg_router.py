"""A small TLS-terminating router for PostgreSQL's wire protocol, on loopback: what v1's router fleet does.

``Router`` listens on a free ``127.0.0.1`` port. For each client it reads the first message itself, as a PostgreSQL
server would: an ``SSLRequest`` is answered ``S`` followed by a TLS handshake (Python's ``ssl``, with the context it was
given), or ``N`` in the "no-tls" mode; a ``GSSENCRequest`` is answered ``N``. Then it opens a plain connection to the
real server (a Unix socket or TCP), hands it the client's startup message and relays bytes both ways until either side
closes. The database therefore never sees the client's TLS, exactly as on Aurora Serverless v1.

The modes (``MODES``): "tls" offers TLS and accepts plain text too (PostgreSQL's ``ssl = on``); "no-tls" offers none
(a server without TLS, or someone who stripped it); "tls-required" refuses a plain-text startup with a PostgreSQL
``ErrorResponse`` (FATAL, SQLSTATE 28000), as the cluster parameters that force TLS do.

Garbage (a bad length, random bytes, a client that leaves mid-handshake) closes that one connection and is noted in
``sessions()``; nothing is printed. ``close()`` (or the end of a ``with`` block) stops the listener, shuts every socket
down and joins every thread.

Example (opens sockets, so written as code; tests/test_security.py runs it)::

    with Router(backend=("/tmp", 5432), context=context) as router:
        psycopg.connect(host="localhost", hostaddr="127.0.0.1", port=router.port, sslmode="require", ...)
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import selectors
import socket
import ssl
import threading
from dataclasses import dataclass
from types import MappingProxyType

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
MODES = MappingProxyType({
    "tls": "offers TLS and accepts plain text too (PostgreSQL's ssl = on)",
    "no-tls": "answers N to every TLS request: no TLS offered, or someone stripped it",
    "tls-required": "offers TLS and refuses a plain-text startup with FATAL 28000 (the parameters that force TLS)",
})
PLAIN_TEXT_REFUSED = ("connection without TLS refused: this router accepts TLS only; connect with sslmode=require or "
                      "stricter")
_MAX_STARTUP_BYTES = 10_000  # PostgreSQL's MAX_STARTUP_PACKET_LENGTH: anything longer is no startup packet
_MAX_REQUESTS = 3  # an SSLRequest and a GSSENCRequest may precede the startup message, nothing more
_MAX_CLIENTS = 64
_CHUNK = 64 * 1024
_JOIN_TIMEOUT_S = 5.0
_SESSIONS_KEPT = 1000


class ProtocolError(Exception):
    """The client sent something that is not the start of a PostgreSQL conversation."""


@dataclass(frozen=True)
class RouterSession:
    """One client connection as the router saw it: its port, the TLS it negotiated (None: plain text), the outcome."""

    client_port: int
    tls_version: str | None
    cipher: str | None
    outcome: str


def error_response(sqlstate: str, message: str, severity: str = "FATAL") -> bytes:
    """A PostgreSQL ``ErrorResponse`` message, as a server sends it before closing.

    Example:
        >>> error_response("28000", "no")[:1], error_response("28000", "no")[5:12]
        (b'E', b'SFATAL\\x00')
    """
    fields = b"".join(code + text.encode() + b"\0" for code, text in
                      ((b"S", severity), (b"V", severity), (b"C", sqlstate), (b"M", message)))
    body = fields + b"\0"
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body


def request_code(packet: bytes) -> int:
    """The 32-bit code after a startup-phase packet's length: a protocol version or a request code.

    Example:
        >>> request_code((8).to_bytes(4, "big") + SSL_REQUEST_CODE.to_bytes(4, "big")) == SSL_REQUEST_CODE
        True
    """
    return int.from_bytes(packet[4:8], "big")


class _Channel:
    """The client's side of one connection: a socket, plain or with TLS through memory BIOs.

    The TLS runs in memory (``SSLContext.wrap_bio``) so the socket stays a plain one: ``Router.close`` can shut it down
    from another thread, and one thread does all the reading and writing of the TLS session.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._buffer = b""

    def start_tls(self, context: ssl.SSLContext) -> None:
        """The server's half of a TLS handshake; ``ssl.SSLError`` when it fails (after sending the alert)."""
        if self._buffer:  # plain bytes sent before the handshake could be injected by a man in the middle
            msg = "received unencrypted data after the SSL request"
            raise ProtocolError(msg)
        tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._feed(self._recv_raw("during the TLS handshake"))
            except ssl.SSLError:
                self._flush()  # the alert tells the client why
                raise
        self._flush()
        self.tls = tls
        self._buffer = self._decrypt_all() or b""  # the client may send its startup message with its last flight

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes (the startup phase); ``ConnectionError`` when the client leaves first."""
        while len(self._buffer) < size:
            data = self.recv_some()
            if data == b"":
                msg = "the client left before its startup message was complete"
                raise ConnectionError(msg)
            self._buffer += data or b""
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def take_buffered(self) -> bytes:
        data, self._buffer = self._buffer, b""
        return data

    def recv_some(self) -> bytes | None:
        """What the client sent: b"" when it closed, None when a TLS record is not complete yet.

        Reads the socket once, then decrypts every whole record that arrived, so nothing waits in memory where a
        selector on the socket could not see it.
        """
        raw = self.sock.recv(_CHUNK)
        if self.tls is None or raw == b"":
            return raw
        self._feed(raw)
        return self._decrypt_all()

    def sendall(self, data: bytes) -> None:
        if self.tls is None:
            self.sock.sendall(data)
            return
        self.tls.write(data)
        self._flush()

    def say_goodbye(self) -> None:
        """A TLS close_notify, so the client sees an orderly end; never raises."""
        if self.tls is None:
            return
        with contextlib.suppress(ssl.SSLError, OSError):
            self.tls.unwrap()
        with contextlib.suppress(OSError):
            self._flush()

    def _recv_raw(self, when: str) -> bytes:
        data = self.sock.recv(_CHUNK)
        if not data:
            msg = f"the client left {when}"
            raise ConnectionError(msg)
        return data

    def _decrypt_all(self) -> bytes | None:
        """Every byte the whole records in memory hold (b"" after the client's close_notify, None when none)."""
        chunks = []
        while True:
            try:
                chunk = self.tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                return b"".join(chunks)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks) or None

    def _feed(self, data: bytes) -> None:
        self._incoming.write(data)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self.sock.sendall(data)


class Router:
    """A TLS-terminating router on ``127.0.0.1`` in front of one PostgreSQL server.

    Args:
        backend: The real server: a ``(socket folder, port)`` pair for a Unix socket, or ``(host, port)`` for TCP.
        context: The server-side ``ssl.SSLContext`` (its certificate, key and TLS versions).
        mode: One of ``MODES``; may be changed while the router runs (``router.mode = "no-tls"``).
        handshake_timeout_s: How long a client may take to send its startup message and finish the TLS handshake.
    """

    def __init__(self, *, backend: tuple[str, int], context: ssl.SSLContext, mode: str = "tls",
                 handshake_timeout_s: float = 5.0) -> None:
        self.mode = mode
        self._backend, self._context = backend, context
        self._handshake_timeout_s = handshake_timeout_s
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._sessions: collections.deque[RouterSession] = collections.deque(maxlen=_SESSIONS_KEPT)
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = socket.socketpair()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._numbers = itertools.count(1)
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"pg-router-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            msg = f"mode={value!r} must be one of {tuple(MODES)}"
            raise ValueError(msg)
        self._mode = value

    def sessions(self) -> list[RouterSession]:
        """Every client connection so far (the latest last), as the router saw it."""
        with self._lock:
            return list(self._sessions)

    def threads(self) -> list[threading.Thread]:
        """The router's threads that are still alive (none once it is closed)."""
        with self._lock:
            return [t for t in [self._acceptor, *self._threads] if t.is_alive()]

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, shut every connection down, and wait for every thread; safe to call twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")  # never read: every selector sees it from now on
        self._acceptor.join(_JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:  # unblocks a thread waiting in recv or sendall
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
        self._wake_read.close()
        self._wake_write.close()

    # ------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ, "listener")
            selector.register(self._wake_read, selectors.EVENT_READ, "stop")
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.data == "stop" or self._stopping.is_set():
                        return
                    self._accept_one()

    def _accept_one(self) -> None:
        try:
            client, address = self._listener.accept()
        except OSError:
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            if len(self._threads) >= _MAX_CLIENTS or self._stopping.is_set():
                client.close()
                return
            self._sockets.add(client)
            thread = threading.Thread(target=self._serve, args=(client, address[1]), daemon=True,
                                      name=f"pg-router-{self.port}-{next(self._numbers)}")
            self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------ one client

    def _serve(self, client: socket.socket, client_port: int) -> None:
        """Negotiate, connect to the server, relay; whatever happens, record it once and close both sockets.

        A relayed connection is recorded when the relay starts, so ``sessions()`` shows it while it is open.
        """
        channel = _Channel(client)
        backend = None
        outcome = None  # set when the connection ends before the relay: what happened

        def record(what: str) -> None:
            tls = channel.tls
            self._record(RouterSession(client_port, tls.version() if tls else None, tls.cipher()[0] if tls else None,
                                       what))

        try:
            client.settimeout(self._handshake_timeout_s)
            startup = self._negotiate(channel)
            if startup is None:
                outcome = "refused a plain-text startup (FATAL 28000)"
                return
            backend = self._connect_backend()
            backend.sendall(startup + channel.take_buffered())
            if request_code(startup) == CANCEL_REQUEST_CODE:
                outcome = "cancel request passed on"
                return
            client.settimeout(None)
            record("relayed to PostgreSQL")
            outcome = "relayed"  # recorded already; how a relay ends (a close, a reset) is not news
            self._relay(channel, backend)
            channel.say_goodbye()
        except ssl.SSLError as error:
            outcome = outcome or f"TLS handshake failed: {_ssl_reason(error)}"
        except (ProtocolError, ConnectionError) as error:
            outcome = outcome or f"closed: {error}"
        except OSError as error:  # a timeout, a reset, or the router closing under it
            outcome = outcome or f"closed: {error.strerror or type(error).__name__}"
        except Exception as error:  # anything else ends this one connection, quietly, never the router
            outcome = outcome or f"closed: {type(error).__name__}: {error}"
        finally:
            if outcome not in (None, "relayed"):
                record(outcome)
            self._close(client)
            if backend is not None:
                self._close(backend)

    def _negotiate(self, channel: _Channel) -> bytes | None:
        """Answer the TLS and GSS requests; return the startup (or cancel) message, or None when it was refused."""
        for _ in range(_MAX_REQUESTS):
            packet = self._read_packet(channel)
            code = request_code(packet)
            if code == SSL_REQUEST_CODE and len(packet) == 8 and channel.tls is None:
                if self.mode == "no-tls":
                    channel.sendall(b"N")
                else:
                    channel.sendall(b"S")
                    channel.start_tls(self._context)
            elif code == GSSENC_REQUEST_CODE and len(packet) == 8:
                channel.sendall(b"N")  # no Kerberos here
            elif code == CANCEL_REQUEST_CODE and len(packet) == 16:
                return packet
            elif code >> 16 == 3:  # a protocol 3.x startup message
                if self.mode == "tls-required" and channel.tls is None:
                    channel.sendall(error_response("28000", PLAIN_TEXT_REFUSED))
                    return None
                return packet
            else:
                channel.sendall(error_response("08P01", f"unsupported frontend protocol or request code {code}"))
                msg = f"unsupported request code {code}"
                raise ProtocolError(msg)
        msg = "too many requests before the startup message"
        raise ProtocolError(msg)

    @staticmethod
    def _read_packet(channel: _Channel) -> bytes:
        header = channel.read_exact(4)
        length = int.from_bytes(header, "big")
        if not 8 <= length <= _MAX_STARTUP_BYTES:
            msg = f"invalid length of startup packet: {length}"
            raise ProtocolError(msg)
        return header + channel.read_exact(length - 4)

    def _connect_backend(self) -> socket.socket:
        host, port = self._backend
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = f"{host}/.s.PGSQL.{port}"
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            address = (host, port)
        with self._lock:
            self._sockets.add(sock)
        try:
            sock.settimeout(self._handshake_timeout_s)
            sock.connect(address)
            sock.settimeout(None)
        except OSError:
            self._close(sock)
            raise
        return sock

    def _relay(self, channel: _Channel, backend: socket.socket) -> None:
        """Copy bytes both ways until either side closes or the router stops."""
        with selectors.DefaultSelector() as selector:
            selector.register(channel.sock, selectors.EVENT_READ, "client")
            selector.register(backend, selectors.EVENT_READ, "backend")
            selector.register(self._wake_read, selectors.EVENT_READ, "stop")
            while not self._stopping.is_set():
                ready = [key.data for key, _ in selector.select()]
                if "stop" in ready:
                    return
                if "client" in ready:
                    data = channel.recv_some()
                    if data == b"":
                        return
                    if data:
                        backend.sendall(data)
                if "backend" in ready:
                    data = backend.recv(_CHUNK)
                    if not data:
                        return
                    channel.sendall(data)

    # ------------------------------------------------------------ bookkeeping

    def _record(self, session: RouterSession) -> None:
        with self._lock:
            self._sessions.append(session)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:  # under the lock: close() never shuts down a descriptor number that was reused
            self._sockets.discard(sock)
            sock.close()


def _ssl_reason(error: ssl.SSLError) -> str:
    """OpenSSL's reason in words: 'TLSV1_ALERT_UNKNOWN_CA' → 'tlsv1 alert unknown ca'.

    Example:
        >>> error = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
        >>> error.reason = "TLSV1_ALERT_UNKNOWN_CA"  # OpenSSL's code, as the ssl module sets it
        >>> _ssl_reason(error)
        'tlsv1 alert unknown ca'
    """
    reason = getattr(error, "reason", None)
    return reason.lower().replace("_", " ") if reason else "ssl error"
