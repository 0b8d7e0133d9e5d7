"""The count of connections tracked clients hold, and its integral over time (for the controller's average).

Example:
    >>> import simpy
    >>> env = simpy.Environment()
    >>> connections = TrackedConnections(env)
    >>> connections.opened()
    >>> env.run(until=10)
    >>> connections.open, connections.seconds(10.0)
    (1, 10.0)
"""

from __future__ import annotations

import simpy


class TrackedConnections:
    """Open connections of pools, per-request clients and Data API calls; the cluster adds its own counts."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.open = 0
        self._seconds = 0.0
        self._since = 0.0
        self.last_close_s = 0.0

    def _account(self) -> None:
        now = self.env.now
        self._seconds += self.open * (now - self._since)
        self._since = now

    def opened(self) -> None:
        now = self.env.now  # _account() inlined: once per connection opened or closed
        self._seconds += self.open * (now - self._since)
        self._since = now
        self.open += 1

    def closed(self) -> None:
        now = self.env.now
        self._seconds += self.open * (now - self._since)
        self._since = now
        self.open -= 1
        self.last_close_s = now

    def lose_all(self) -> None:
        """Every connection died with the instance (a fault): none is open any more, none will be closed."""
        self._account()
        self.open = 0
        self.last_close_s = self.env.now

    def seconds(self, now: float) -> float:
        """Connection-seconds accumulated until ``now``."""
        return self._seconds + self.open * (now - self._since)
