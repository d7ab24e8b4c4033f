"""The closed-loop evaluation: policies decide from readings, crews empty, the scores add up."""
from __future__ import annotations

import json

import pytest

from app.cli import main
from planner import config as planner_config
from simulator import scenario as scenarios
from simulator.evaluate import ClosedLoop
from simulator.fill_times import fill_times, table
from simulator.policies import Clairvoyant, FixedSchedule, Planner

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


def test_on_round_days_the_planner_empties_fewer_bins_fuller_and_serves_every_must_go(
        small, config):
    rounds = config.model_copy(update={"areas": config.areas.model_copy(
        update={"enabled": False})})
    fixed = _run(small, config, FixedSchedule(config, 0.5, 3), weeks=2)
    planned = _run(small, config, Planner(rounds, 0.5, 3), weeks=2)
    assert planned.must_unserved == 0
    assert planned.visits < fixed.visits
    assert planned.fill_at_emptying_pct > fixed.fill_at_emptying_pct


def _by_area(config, price: float) -> planner_config.PlannerConfig:
    return config.model_copy(update={"areas": config.areas.model_copy(
        update={"enabled": True, "overflow_cost_m_per_h": price})})


def test_planning_by_area_trades_kilometres_for_overflow_at_the_price_set(small, config):
    cheap = _run(small, config, Planner(_by_area(config, 30), 0.5, 3), weeks=2)
    dear = _run(small, config, Planner(_by_area(config, 3000), 0.5, 3), weeks=2)
    assert cheap.must_unserved == dear.must_unserved == 0
    # A dear overflow hour sends the trucks out more often and leaves fewer bins standing full.
    assert dear.km > cheap.km
    assert dear.overflow_bin_hours < cheap.overflow_bin_hours


def test_with_perfect_knowledge_the_same_decisions_drive_less_for_no_more_overflow(small,
                                                                                   config):
    by_area = _by_area(config, 300)
    planned = _run(small, config, Planner(by_area, 0.5, 3), weeks=2)
    clairvoyant = _run(small, config, Clairvoyant(by_area, 0.5, 3), weeks=2)
    fixed = _run(small, config, FixedSchedule(config, 0.5, 3), weeks=2)
    assert clairvoyant.km < planned.km
    assert clairvoyant.overflow_bin_hours <= planned.overflow_bin_hours
    assert clairvoyant.overflow_bin_hours < fixed.overflow_bin_hours
    assert clairvoyant.visits < planned.visits


def _evaluate(small, tmp_path, *more: str):
    """``bauhof evaluate`` of fixed and planner on the small scenario for half a week; the
    directory it wrote to."""
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps(small.model_dump(mode="json")), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["evaluate", "--scenario", str(path), "--weeks", "0.5", "--seeds", "1",
                 "--time-limit", "0.3", "--jobs", "1", "--policy", "fixed", "--policy",
                 "planner", *more, "--out", str(out)]) == 0
    return out


def test_bauhof_evaluate_prints_the_table_and_writes_results(small, tmp_path, capsys):
    out = _evaluate(small, tmp_path)
    printed = capsys.readouterr().out
    assert "| fixed |" in printed and "| planner |" in printed
    results = json.loads((out / "results.json").read_text())
    assert {r["policy"] for r in results["runs"]} == {"fixed", "planner"}
    assert (out / "plot.svg").read_text().startswith("<svg")


def test_bauhof_evaluate_runs_the_planner_once_per_overflow_price(small, tmp_path, capsys):
    out = _evaluate(small, tmp_path, "--price", "3000,30")
    printed = capsys.readouterr().out
    rows = [line.split("|")[1].strip() for line in printed.splitlines()
            if line.startswith("| ") and "policy" not in line]
    assert rows[:3] == ["fixed", "planner @30", "planner @3000"]
    summary = json.loads((out / "results.json").read_text())["summary"]
    km = {r["policy"]: r["km"] for r in summary}
    assert km["planner @3000"] >= km["planner @30"]
    assert (out / "plot.svg").read_text().startswith("<svg")
    # The trade-off as a picture: one point per policy and price, and the goal's box.
    frontier = (out / "frontier.svg").read_text()
    assert frontier.count("<circle") == 3 and "planner @30</text>" in frontier
    assert "goal: -40 % km,</text>" in frontier and "no more overflow" in frontier


def test_fill_times_show_a_town_core_filling_faster_than_its_village(small):
    town = small.municipalities[0]
    village = scenarios.Village(name="Aufenau", distance_km=3.0, bearing_deg=240,
                                bins={"bus_stop": 2, "park": 1})
    with_village = small.model_copy(update={"municipalities": [
        town.model_copy(update={"villages": [village]})]})
    rows = {r["areas"]: r for r in fill_times(with_village, seed=1, weeks=1)}
    assert rows["core"]["bins"] == 12 and rows["outlying"]["bins"] == 3
    # Village bins are used less (usage 0.4): more than twice as long to fill.
    assert rows["outlying"]["median_days"] > 2 * rows["core"]["median_days"]
    assert 2 < rows["core"]["median_days"] < 9
    assert rows["core"]["fastest_days"] <= rows["core"]["fastest_10pct_days"] <= (
        rows["core"]["median_days"])
    printed = table(list(rows.values()))
    assert f"| {TOWN} | core | 12 |" in printed
