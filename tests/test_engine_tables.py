"""The engine's shortcuts give the tables of the plain computations they replace (issue 11).

- ``metrics`` percentiles: computed a chunk of requests at a time, each slot found by a search and sorted as float32
  keys, they equal a float64 sort of every slot at once, to the last bit.
- ``QueueServer.finish_over_costs``: finish times written over the spent costs give the tables of a separate array.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aurora_sim import ModelAssumptions, Workload, scenarios, server, simulation

QUANTILES = (0.5, 0.95)


def _reference(slot: np.ndarray, latency: np.ndarray, rows: int) -> list[np.ndarray]:
    """Each slot's linear-interpolated quantiles from a plain float64 sort."""
    result = [np.full(rows, np.nan) for _ in QUANTILES]
    for row in np.unique(slot):
        values = np.sort(latency[slot == row])
        for q, out in zip(QUANTILES, result, strict=True):
            position = q * (len(values) - 1)
            low = int(np.floor(position))
            high = min(low + 1, len(values) - 1)
            out[row] = values[low] + (values[high] - values[low]) * (position - low)
    return result


def _simulate(scenario: scenarios.Scenario) -> simulation.Run:
    return simulation.simulate(scenario.config, scenario.workload, duration_s=scenario.duration_s,
                               seed=scenario.seed, metrics_period_s=scenario.metrics_period_s,
                               assumptions=scenario.assumptions)


def _server(scenario: scenarios.Scenario) -> server.QueueServer:
    """The server of a finished run (every request ended)."""
    captured = []
    original = simulation._tables

    def capture(cluster, record, *args):
        captured.append(record)
        return original(cluster, record, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulation, "_tables", capture)
        _simulate(scenario)
    return captured[0]


REGULAR = scenarios.Scenario(  # every latency alike: float32 keys tie everywhere
    name="regular", description="", duration_s=1800, config=scenarios.flash_sale().config,
    workload=Workload(segments=[(0, 1800, 20.0)], arrivals="regular", query_cpu_s=0.02),
    assumptions=ModelAssumptions(query_cost_cv=0.0))


@pytest.mark.parametrize("scenario", [scenarios.flash_sale(), scenarios.tour(), REGULAR],
                         ids=["flash sale (refusals)", "tour", "regular, constant cost"])
@pytest.mark.parametrize("period", [60.0, 7.3, 3600.0])
def test_slot_percentiles_in_chunks_equal_a_plain_sort_of_each_slot(scenario, period, monkeypatch):
    queue = _server(scenario)
    rows = int(np.ceil(scenario.duration_s * 0.9 / period))  # some requests finish after the metrics' end
    slot, latency = simulation._ok_slots(queue, 0, len(queue.outcome), rows, period)
    expected = _reference(slot, latency, rows)
    for chunk in (97, 1000, 1 << 17):
        monkeypatch.setattr(simulation, "_CHUNK", chunk)
        completed, found = simulation._latency_in_chunks(queue, rows, period, QUANTILES)
        np.testing.assert_array_equal(completed, np.bincount(slot, minlength=rows))
        for got, want in zip(found, expected, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"chunk {chunk}")


def test_finish_times_over_the_costs_give_the_tables_of_a_separate_array(monkeypatch):
    sale = scenarios.flash_sale()
    shared = _simulate(sale)
    monkeypatch.setattr(server.QueueServer, "finish_over_costs", lambda self: None)
    separate = _simulate(sale)
    for table in ("metrics", "events", "requests"):
        pd.testing.assert_frame_equal(shared.sql(f"SELECT * FROM {table}").df(),
                                      separate.sql(f"SELECT * FROM {table}").df(), check_exact=True)
