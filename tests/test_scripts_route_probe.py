"""`scripts/route_probe.py` (issue 8, session 18): HiPART's mostly hidden poses lifted by a separate lifter, scored
on the samples and occlusion draws of `evaluate` (the tiny run and report of `tests.test_recipes_eval`)."""

from __future__ import annotations

import pytest

from tests.recipe_runs import script_module
from tests.test_recipes_eval import report, run_dir  # noqa: F401 (fixtures)


def test_route_probe_scores_the_evaluation_cells_and_routes_the_mostly_hidden_poses(run_dir, report):
    route_probe = script_module("route_probe")
    scores = route_probe.probe(run_dir, split="test", max_samples=64)
    assert len(scores) == 17
    for cell, row in scores.items():  # the same samples and draws as `evaluate`: its numbers
        protocol, ratio = cell.split()
        for method in ("hipart", "sparse_only"):
            assert row[method] == pytest.approx(report["occlusion"][protocol][ratio][method], rel=1e-4)
    clean, few, most = scores["mask 0.0"], scores["mask 0.8"], scores["mask 0.2"]
    assert clean["routed17"] == 0 and clean["route17"] == pytest.approx(clean["hipart"])  # every joint seen
    assert few["routed12"] == 1 and few["route12"] == pytest.approx(few["sparse_only"])  # 3 of 17 seen
    assert most["routed12"] == 0 and most["route12"] == pytest.approx(most["hipart"])  # 14 of 17 seen
    assert most["routed17"] == 1 and most["route17"] == pytest.approx(most["sparse_only"])
    crop = scores["crop 0.4"]  # a crop hides a varying number of joints: a route mixes both lifters' poses
    assert crop["routed12"] <= crop["routed14"] <= crop["routed17"] == 1
    lines = route_probe.table(scores).splitlines()
    assert len(lines) == 7 and lines[3].startswith("| sparse_only |") and lines[3].endswith(" | 17/17 |")
    # another run's HiPART lifter with its levels hidden as the separate lifter and the baseline
    other = route_probe.probe(run_dir, run_dir, split="test", max_samples=64)
    assert other["mask 0.2"]["route17"] == pytest.approx(other["mask 0.2"]["fallback"])
    assert other["mask 0.0"]["hipart"] == pytest.approx(clean["hipart"])
