"""Things scheduled to happen to a cluster during a run: a fault, a manual capacity change, a patch.

A ``ClusterAction`` is a frozen, validated description (``at_s`` and its own parameters). ``simulate(...,
actions=[...])`` validates each against the run's config and duration before anything runs, then calls
``start(cluster)``, which starts the action's simpy process(es) on ``cluster.env``. Subclasses live in the module
of their story (``faults``, ``manual_capacity``, …) and override ``start`` and, for checks that need the config,
``validate``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Note(ClusterAction):
    ...     def start(self, cluster):
    ...         cluster.env.process(self._at_time(cluster, lambda: print(f"note at {cluster.env.now:g} s")))
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> _ = simulate(ClusterConfig(), Workload(segments=[(0, 60, 1.0)]), duration_s=60, actions=[Note(at_s=30)])
    note at 30 s
    >>> Note(at_s=-1)
    Traceback (most recent call last):
    ...
    ValueError: at_s=-1 is outside 0..31622400 (seconds from the start of the run)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._validate import _check_range, _check_type
from ._work import MAX_DURATION_S

if TYPE_CHECKING:
    from .cluster import Cluster
    from .config import ClusterConfig


@dataclass(frozen=True, kw_only=True)
class ClusterAction:
    """Base of every scheduled action: ``at_s`` is when it happens, in seconds from the start of the run."""

    at_s: float

    def __post_init__(self) -> None:
        _check_range("at_s", self.at_s, 0, MAX_DURATION_S, unit="seconds from the start of the run")

    def validate(self, config: ClusterConfig, duration_s: float) -> None:
        """Raise ValueError if this action cannot happen in a run of ``config`` lasting ``duration_s``."""
        if self.at_s >= duration_s:
            raise ValueError(f"{type(self).__name__}(at_s={self.at_s!r}) must happen before the run ends: "
                             f"at_s < duration_s={duration_s:g}")

    def start(self, cluster: Cluster) -> None:
        """Start this action's simpy process(es) on ``cluster.env``."""
        raise NotImplementedError(f"{type(self).__name__} must define start(cluster)")

    def _at_time(self, cluster: Cluster, then: Callable[[], object]):
        """A simpy process that waits until ``at_s`` and calls ``then()``: the shape of most ``start`` methods."""
        yield cluster.env.timeout(max(0.0, self.at_s - cluster.env.now))
        then()


def check_actions(actions: Sequence[ClusterAction], config: ClusterConfig, duration_s: float) -> tuple:
    """The actions as a tuple, each checked against the run (ValueError naming ``actions[i]`` otherwise).

    Example:
        >>> check_actions([42], None, 60)
        Traceback (most recent call last):
        ...
        TypeError: actions[0]=42 must be a ClusterAction, not int
    """
    if isinstance(actions, (str, bytes)) or not isinstance(actions, Sequence):
        raise TypeError(f"actions={actions!r} must be a list or tuple of ClusterAction objects")
    for index, action in enumerate(actions):
        _check_type(f"actions[{index}]", action, ClusterAction, "a ClusterAction")
        try:
            action.validate(config, duration_s)
        except ValueError as error:
            raise ValueError(f"actions[{index}]: {error}") from None
    return tuple(actions)
