"""How the local Data API accepts and reads connections: a bounded set of connection threads, a deep listen queue, and
deadlines that stop a slow client from holding a thread.

- ``LISTEN_BACKLOG`` connections may wait in the kernel's queue (Python's default of 5 made about one connect in six
  stall for a second under load).
- At most ``MAX_CONNECTIONS`` connections are served at once, one thread each; the next one waits in the listen
  queue until a thread is free, so a flood of clients costs queue slots, not threads or memory.
- A kept-alive connection may sit idle ``KEEP_ALIVE_S`` between requests; from a request's first byte its line,
  headers and body must all arrive within ``REQUEST_S``, however the client spreads them (a client trickling one
  byte every 2 s is cut off after ``REQUEST_S``); an answer must leave within ``SEND_S``.
- A client that leaves, resets or stalls is dropped quietly: nothing is printed on the server's stderr.

Example:
    >>> server = BoundedHTTPServer(("127.0.0.1", 0), DeadlineRequestHandler)
    >>> server.request_queue_size, server.busy_connections()
    (1024, 0)
    >>> server.server_close()
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

LISTEN_BACKLOG = 1024
MAX_CONNECTIONS = 128
KEEP_ALIVE_S = 5.0
REQUEST_S = 5.0
SEND_S = 10.0
_STOP_POLL_S = 0.05  # how often a full server checks whether it is stopping


class RequestTimedOut(TimeoutError):
    """A request did not arrive whole within ``REQUEST_S`` of its first byte."""


class _DeadlineSocketReader(io.RawIOBase):
    """A socket's bytes under two clocks: the first byte of a request may take ``KEEP_ALIVE_S`` to come; from then,
    the whole request must arrive within ``REQUEST_S`` (each read waits only for what is left of it)."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self.deadline: float | None = None  # when the current request must be complete; None between requests

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        if self.deadline is None:
            wait_s = KEEP_ALIVE_S
        else:
            wait_s = self.deadline - time.monotonic()
            if wait_s <= 0:
                raise RequestTimedOut(f"the request did not arrive whole within {REQUEST_S:g} s")
        self._connection.settimeout(wait_s)
        count = self._connection.recv_into(buffer)
        if self.deadline is None and count:
            self.deadline = time.monotonic() + REQUEST_S
        return count


class DeadlineRequestHandler(BaseHTTPRequestHandler):
    """``BaseHTTPRequestHandler`` reading through the deadline clocks; a timeout anywhere in a request ends the
    connection (``handle_one_request`` catches ``TimeoutError``), and ``send_answer_timeout`` bounds the writes."""

    disable_nagle_algorithm = True  # a small JSON answer leaves at once

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineSocketReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.deadline = None  # the next request's clock starts with its first byte
        super().handle_one_request()

    def send_answer_timeout(self) -> None:
        """Give the answer ``SEND_S`` to leave (a client that never reads cannot hold the thread longer)."""
        self.connection.settimeout(SEND_S)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: a notebook cell should not fill with access logs


class BoundedHTTPServer(HTTPServer):
    """An ``HTTPServer`` with a thread per connection, at most ``max_connections`` of them, and a deep listen queue."""

    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def busy_connections(self) -> int:
        """How many connections hold a thread right now."""
        with self._connections_lock:
            return len(self._connections)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        # Wait for a free thread; meanwhile later connections wait in the listen queue (bounded memory).
        while not self._slots.acquire(timeout=_STOP_POLL_S):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            threading.Thread(target=self._serve, args=(request, client_address), daemon=True,
                             name=f"data-api-connection-{self.server_address[1]}").start()
        except RuntimeError:  # no thread to be had: drop this connection rather than the server
            self.shutdown_request(request)
            self._slots.release()

    def _serve(self, request: socket.socket, client_address: object) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # reported by handle_error, as socketserver does
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: socket.socket, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client reset, left or stalled: nothing for the server's stderr
        super().handle_error(request, client_address)

    def shutdown(self) -> None:
        self._stopping.set()
        super().shutdown()

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()
        with self._connections_lock:  # kept-alive connections: end them now, not at their deadline
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
