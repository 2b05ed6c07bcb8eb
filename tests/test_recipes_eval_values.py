"""Evaluation's pure functions on hand-made values: hypothesis scoring, the observed centre, the Human3.6M table."""

from __future__ import annotations

import pytest
import torch

from recipes.hipart.centring import observed_centre
from recipes.hipart.evaluate import score_hypotheses
from recipes.hipart.report import METHODS


def test_score_hypotheses_values():
    gt = torch.zeros(2, 17, 3)
    joints = torch.zeros(2, 3, 17, 3)
    joints[0, :, :, 0] = torch.tensor([1.0, -3.0, 5.0])[:, None]   # sample 0: errors 1, 3, 5 along x
    joints[1, :, :, 1] = torch.tensor([2.0, 2.0, 2.0])[:, None]    # sample 1: three equal hypotheses, error 2
    s = score_hypotheses(joints, gt, ns=(1, 2, 3))
    assert s["per_hypothesis"] == pytest.approx({"1": 1.5, "2": (2 + 2) / 2, "3": (3 + 2) / 2})
    assert s["best_of_n"] == pytest.approx({"1": 1.5, "2": 1.5, "3": 1.5})
    # average poses: sample 0 at x = 1, -1, 1; sample 1 stays at 2
    assert s["mean_of_n"] == pytest.approx({"1": 1.5, "2": 1.5, "3": 1.5})
    joints[0, 2, :, 0] = -1.0
    assert score_hypotheses(joints, gt, ns=(3,))["mean_of_n"]["3"] == pytest.approx((1 + 2) / 2)


def test_observed_centre_uses_visible_joints_only():
    x = torch.zeros(3, 17, 2)
    x[:, 0] = torch.tensor([0.1, 0.2])                       # pelvis
    x[:, 1], x[:, 4] = torch.tensor([0.0, 0.2]), torch.tensor([0.3, 0.2])   # hips
    x[:, 5:] = 0.9
    vis = torch.ones(3, 17, dtype=torch.bool)
    vis[1, 0] = False                                          # pelvis hidden: mid-hips
    vis[2, :5] = False                                         # pelvis and hips hidden: mean of the rest
    c = observed_centre(x, vis)
    torch.testing.assert_close(c[0, 0], torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(c[1, 0], torch.tensor([0.15, 0.2]))
    torch.testing.assert_close(c[2, 0], torch.tensor([0.9, 0.9]))
    moved = x.clone()
    moved[2, :5] += 5.0
    torch.testing.assert_close(observed_centre(moved, vis), c)
    assert torch.equal(observed_centre(x, torch.zeros_like(vis)), torch.zeros(3, 1, 2))


def test_h36m_table_values_and_layout():
    from recipes.hipart.report import H36M_ABBREVIATIONS, format_markdown, h36m_table

    def errs(v):
        return {"mpjpe_mm": {m: v + i for i, m in enumerate(METHODS)},
                "p_mpjpe_mm": {m: v / 2 + i for i, m in enumerate(METHODS)}}

    per_action = {"Walking": {"frames": 4, **errs(40.0)}, "Eating": {"frames": 2, **errs(60.0)},
                  "climb": {"frames": 9, **errs(500.0)}, "Sitting": {"frames": 0, **errs(900.0)}}
    table = h36m_table(per_action)
    assert table["evaluated"] == ["Eating", "Walking"]  # the paper's column order; empty actions left out
    assert table["abbreviations"] == list(H36M_ABBREVIATIONS.values()) and len(table["actions"]) == 15
    row = table["mpjpe_mm"]["hipart"]
    assert row["Walking"] == 41.0 and row["Eating"] == 61.0 and row["Sitting"] is None and row["Directions"] is None
    assert row["Avg"] == pytest.approx(51.0)  # mean of the per-action errors, not of the frames (climb ignored)
    assert table["p_mpjpe_mm"]["sparse_only"]["Avg"] == pytest.approx(25.0)
    assert h36m_table({"climb": per_action["climb"]}) is None
    md = format_markdown({"mpjpe_mm": errs(1.0)["mpjpe_mm"], "p_mpjpe_mm": errs(1.0)["p_mpjpe_mm"], "h36m_table": table})
    assert "Protocol #1, MPJPE" in md and "Protocol #2, P-MPJPE" in md and "| Dir. |" in md
    assert "| hipart | - | - | 61.0 |" in md  # Dir. and Disc. missing, Eat present
