"""simulate(..., actions=[...]): scheduled actions are validated up front and run at their time."""

from dataclasses import dataclass

import pytest

from aurora_sim import ClusterConfig, Workload, simulate
from aurora_sim.actions import ClusterAction

WORKLOAD = Workload(segments=[(0, 600, 2.0)])


@dataclass(frozen=True, kw_only=True)
class Mark(ClusterAction):
    """Emits a ``note`` event at ``at_s`` (a stand-in for a fault or a manual change)."""

    def start(self, cluster):
        cluster.env.process(self._at_time(cluster, lambda: cluster._emit("note", message=f"at {self.at_s:g}")))


def test_an_action_happens_at_its_time_and_is_logged():
    run = simulate(ClusterConfig(), WORKLOAD, duration_s=600, seed=1, actions=[Mark(at_s=120), Mark(at_s=30)])
    assert run.sql("SELECT time_s FROM events WHERE kind = 'note' ORDER BY seq").fetchall() == [(30.0,), (120.0,)]


def test_no_actions_leaves_the_run_unchanged():
    plain = simulate(ClusterConfig(), WORKLOAD, duration_s=600, seed=1)
    empty = simulate(ClusterConfig(), WORKLOAD, duration_s=600, seed=1, actions=())
    for table in ("metrics", "events", "requests", "capacity"):
        assert plain.sql(f"SELECT * FROM {table}").df().equals(empty.sql(f"SELECT * FROM {table}").df())


@pytest.mark.parametrize(("actions", "error", "words"), [
    ([Mark(at_s=600)], ValueError, ["actions[0]", "at_s < duration_s=600"]),
    ([Mark(at_s=1), "fault"], TypeError, ["actions[1]='fault'", "ClusterAction"]),
    ("fault", TypeError, ["actions='fault'", "list or tuple"]),
])
def test_bad_actions_are_refused_before_the_run(actions, error, words):
    with pytest.raises(error) as raised:
        simulate(ClusterConfig(), WORKLOAD, duration_s=600, actions=actions)
    assert all(word in str(raised.value) for word in words)


def test_at_s_is_validated_when_the_action_is_made():
    with pytest.raises(ValueError, match=r"at_s=nan must be a finite number"):
        Mark(at_s=float("nan"))
