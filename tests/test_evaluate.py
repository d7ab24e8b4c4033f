"""The closed-loop evaluation: policies decide from readings, crews empty, the scores add up."""
from __future__ import annotations

import json

import pytest

from app.cli import main
from planner import config as planner_config
from simulator import scenario as scenarios
from simulator.evaluate import ClosedLoop
from simulator.policies import FixedSchedule, Planner

TOWN = "Wächtersbach"  # rounds on Monday and Thursday in planner/default.yaml


@pytest.fixture(scope="module")
def small() -> scenarios.Scenario:
    """One town of the default scenario with twelve bins and nothing else."""
    full = scenarios.load()
    town = next(t for t in full.municipalities if t.name == TOWN)
    town = town.model_copy(update={"bins": {"bus_stop": 4, "town_centre": 5, "park": 3},
                                   "soil": {}, "irrigation": 0, "villages": []})
    return full.model_copy(update={"municipalities": [town], "devices": []})


@pytest.fixture(scope="module")
def config() -> planner_config.PlannerConfig:
    return planner_config.load()


class Never:
    name = "never"

    def plan(self, day, bins, history):
        return None


def _run(small, config, policy, weeks=1.0):
    return ClosedLoop(small, policy, config, seed=3, weeks=weeks,
                      warm_up=FixedSchedule(config, 0.5, 3)).evaluate()


def test_the_fixed_schedule_empties_every_bin_twice_a_week(small, config):
    score = _run(small, config, FixedSchedule(config, 0.5, 3))
    assert score.visits == 2 * 12
    assert score.km > 0 and score.truck_hours > 0
    assert 20 < score.fill_at_emptying_pct < 100
    assert score.must_unserved == 0


def test_bins_nobody_empties_overflow(small, config):
    fixed = _run(small, config, FixedSchedule(config, 0.5, 3))
    never = _run(small, config, Never())
    assert never.visits == 0 and never.km == 0
    assert never.overflow_bin_hours > fixed.overflow_bin_hours + 100


def test_the_planner_empties_fewer_bins_fuller_and_serves_every_must_go(small, config):
    fixed = _run(small, config, FixedSchedule(config, 0.5, 3), weeks=2)
    planned = _run(small, config, Planner(config, 0.5, 3), weeks=2)
    assert planned.must_unserved == 0
    assert planned.visits < fixed.visits
    assert planned.fill_at_emptying_pct > fixed.fill_at_emptying_pct


def test_bauhof_evaluate_prints_the_table_and_writes_results(small, tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps(small.model_dump(mode="json")), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["evaluate", "--scenario", str(path), "--weeks", "0.5", "--seeds", "1",
                 "--time-limit", "0.3", "--jobs", "1", "--policy", "fixed", "--policy",
                 "planner", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| fixed |" in printed and "| planner |" in printed
    results = json.loads((out / "results.json").read_text())
    assert {r["policy"] for r in results["runs"]} == {"fixed", "planner"}
    assert (out / "plot.svg").read_text().startswith("<svg")
