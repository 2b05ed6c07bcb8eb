"""Scored 2D detections with misses: reading VideoPose3D files' score channels, storing ``det_score``, hiding missed
and low-scored keypoints from the models (the fixture's scored file: tests/h36m_detections.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import load_dataset, save_dataset, validate_dataset
from skeletok.data.sets.h36m import h36m_cameras, h36m_to_dataset, load_h36m_2d
from skeletok.data.sets.h36m_2d import split_scores
from skeletok.data.views.occlusion import Occlusion
from skeletok.skeleton import H36M_17, coco17_to_h36m17
from tests.h36m_detections import LIMB_ENDS
from tests.h36m_fixtures import (  # noqa: F401 (fixtures)
    BLANK_FRAMES,
    COCO_META,
    H36M_META,
    SCORED_2D,
    calibration_files,
    h36m_files,
    mocap,
)


def _raw(path) -> dict:
    with np.load(path, allow_pickle=True) as z:
        return z["positions_2d"].item()


@pytest.fixture(scope="module")
def scored(h36m_files, tmp_path_factory):
    """The fixture's scored file converted (no levels: fast), with the conversion's report."""
    root, _, _, cameras = h36m_files
    report = {}
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, data_2d=root / SCORED_2D, levels_from="none",
                          report=report, out=tmp_path_factory.mktemp("scored") / "h36m.npz")
    return out, load_dataset(out), report, _raw(root / SCORED_2D)


def test_the_fixture_is_detector_like(h36m_files):
    root = h36m_files[0]
    raw = _raw(root / SCORED_2D)
    views = [v for acts in raw.values() for vs in acts.values() for v in vs]
    assert {v.shape[1:] for v in views} == {(17, 3)}
    arr = np.concatenate(views)
    score = arr[..., 2]
    missed = score == 0
    assert np.isnan(arr[..., :2]).all(-1)[~missed].sum() == 0  # NaN coordinates only at misses
    assert np.isnan(arr[..., 0][missed]).any() and (arr[..., :2][missed & ~np.isnan(arr[..., 0])] == 0).all()
    limb = np.zeros(17, bool)
    limb[list(LIMB_ENDS)] = True
    blanks = sum(len(f) for f in BLANK_FRAMES.values())
    rate_limb = missed[:, limb].mean()
    rate_rest = missed[:, ~limb].mean()
    assert 0.0 < rate_rest < rate_limb < 0.2  # a few percent, more at wrists and ankles
    assert missed.all(-1).sum() == blanks
    assert ((score > 0) & (score <= 1)).sum() == (~missed).sum()


def test_scores_and_misses_are_stored(scored, h36m_files):
    out, d, report, raw = scored
    cameras = h36m_files[3]
    assert d["det_score"].shape == d["det_sparse"].shape[:-1] == (37, 4, 17) and d["det_score"].dtype == np.float32
    assert np.isfinite(d["det_sparse"]).all()
    total = missed = 0
    for s, name in enumerate(d["sequence_names"]):
        subject, action = str(name).split("/")
        rows = d["sequence"] == s
        cams = h36m_cameras(subject, calibration=cameras)
        for c in range(4):
            src = raw[subject][action][c]
            total += src[..., 2].size
            missed += int((src[..., 2] == 0).sum())
            src = src[: rows.sum()]  # the detections are one frame longer than the mocap
            score, xy = d["det_score"][rows, c], d["det_sparse"][rows, c]
            np.testing.assert_array_equal(score, src[..., 2])  # scores round-trip, 0 at misses
            hit = score > 0
            np.testing.assert_array_equal(xy[hit], src[..., :2][hit])
            # a missed keypoint sits on the mean of its frame's detected ones, or the image centre
            for t in np.flatnonzero((~hit).any(-1)):
                fill = xy[t, hit[t]].mean(0) if hit[t].any() else 0.5 * np.float32(cams[c].size)
                np.testing.assert_allclose(xy[t, ~hit[t]], np.broadcast_to(fill, xy[t, ~hit[t]].shape), atol=1e-3)
    assert not (d["det_score"] > 0).any(-1)[d["sequence"] == 2, 1][3]  # S9/Eating, camera 1, frame 3: nobody found
    note = report["notes_2d"][0]
    assert "2D read as x, y, score" in note and f"{missed} of {total} keypoints" in note


def test_misses_are_hidden_and_the_threshold_honoured(scored):
    out, d, _, _ = scored
    score = d["det_score"].reshape(-1, 17)  # item f * 4 + c of split "all"
    for min_score in (0.0, 0.5):
        ds = HierarchicalPoseDataset(out, split="all", use_detections=True, det_min_score=min_score)
        items = ds.__getitems__(list(range(len(ds))))
        visible = torch.stack([i["sparse_visible"] for i in items]).numpy()
        np.testing.assert_array_equal(visible, (score > 0) & (score >= min_score))
        sparse = torch.stack([i["sparse_2d"] for i in items])
        assert torch.isfinite(sparse).all()  # hidden coordinates never NaN
    assert visible.sum() < (score > 0).sum() and ds.det_min_score == 0.5
    # ground-truth input ignores the detector
    assert all(i["sparse_visible"].all() for i in HierarchicalPoseDataset(out, split="all"))
    with pytest.raises(ValueError, match="det_min_score must be a finite score >= 0"):
        HierarchicalPoseDataset(out, use_detections=True, det_min_score=-1.0)


def test_occlusion_hides_on_top_of_the_misses(scored):
    out = scored[0]
    occ = Occlusion(mask_ratio=0.3, probability=1.0)  # masking draws do not depend on visibility
    det = HierarchicalPoseDataset(out, split="all", use_detections=True, occlusion=occ, seed=3)
    gt = HierarchicalPoseDataset(out, split="all", occlusion=occ, seed=3)
    plain = HierarchicalPoseDataset(out, split="all", use_detections=True)
    idx = list(range(len(det)))
    vis = torch.stack([i["sparse_visible"] for i in det.__getitems__(idx)])
    masked = torch.stack([i["sparse_visible"] for i in gt.__getitems__(idx)])
    found = torch.stack([i["sparse_visible"] for i in plain.__getitems__(idx)])
    assert torch.equal(vis, masked & found)  # hidden = missed or occluded
    assert (~found & masked).any() and (found & ~masked).any()


def test_a_frame_with_every_keypoint_missed_goes_through_the_models(scored):
    from recipes.hipart.centring import generate_centred
    from skeletok import HierarchicalARPrior, HierarchicalLifter, HierarchicalPoseTokenizer

    out, d, _, _ = scored
    ds = HierarchicalPoseDataset(out, split="test", use_detections=True, occlusion=Occlusion(mask_ratio=0.2))
    blank = 3 * 4 + 1  # S9/Eating (the test split), frame 3, camera 1
    batch = torch.utils.data.default_collate(ds.__getitems__([blank, 0, 5, 9]))
    assert not batch["sparse_visible"][0].any() and batch["sparse_visible"][1:].any()
    assert torch.isfinite(batch["sparse_2d"]).all()
    torch.manual_seed(0)
    lifter = HierarchicalLifter(level_points=(17,), dim=16, depth=1, heads=2)
    joints = lifter([batch["sparse_2d"]], [batch["sparse_visible"]])
    assert joints.shape == (4, 17, 3) and torch.isfinite(joints).all()
    joints.square().mean().backward()  # training: finite gradients
    assert all(torch.isfinite(p.grad).all() for p in lifter.parameters() if p.grad is not None)
    prior = HierarchicalARPrior(codebook_size_sparse=8, codebook_size_dense=8, dim=16, depth=1, heads=2)
    q_s, q_d = torch.randint(0, 8, (4, 16)), torch.randint(0, 8, (4, 16, 3))
    result = prior(batch["sparse_2d"], batch["sparse_visible"], q_s, q_d)
    loss = result[-1] if isinstance(result, tuple) else result
    assert torch.isfinite(loss).all()
    tokenizer = HierarchicalPoseTokenizer(dim=16, depth=1, code_dim=8, codebook_size_sparse=8, codebook_size_dense=8,
                                          fine_parts=d["parts_fine"].tolist(), dense_parts=d["parts_dense"].tolist())
    regressor = torch.full((17, 96), 1.0 / 96)  # hidden pelvis: the levels are placed on the visible joints
    for reg in (None, regressor):
        dense, fine = generate_centred(prior, tokenizer, batch["sparse_2d"], batch["sparse_visible"], regressor=reg)[:2]
        assert torch.isfinite(dense).all() and torch.isfinite(fine).all()


def test_files_without_scores_score_one(h36m_files, tmp_path, scored):
    root, _, _, cameras = h36m_files
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, data_2d=root / "data_2d_h36m_cpn_ft_h36m_dbb.npz",
                          levels_from="none", subjects=["S9"], out=tmp_path / "cpn.npz")
    d = load_dataset(out)
    assert (d["det_score"] == 1.0).all()
    ds = HierarchicalPoseDataset(out, split="test", use_detections=True, det_min_score=0.9)
    assert all(i["sparse_visible"].all() for i in ds)
    # a file written before det_score existed: every detection counts, even with a threshold
    old = dict(scored[1])
    del old["det_score"]
    save_dataset(old, tmp_path / "old.npz")
    ds = HierarchicalPoseDataset(tmp_path / "old.npz", split="all", use_detections=True, det_min_score=0.5)
    assert all(i["sparse_visible"].all() for i in ds)
    bad = dict(scored[1])
    del bad["det_sparse"]
    with pytest.raises(ValueError, match="'det_score' needs key 'det_sparse'"):
        validate_dataset(bad, "bad.npz")
    bad = {**scored[1], "det_score": scored[1]["det_score"] - 2.0}
    with pytest.raises(ValueError, match=r"bad\.npz: key 'det_score' must hold scores >= 0"):
        validate_dataset(bad, "bad.npz")


def test_channel_layouts(tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (5, 17, 2)).astype(np.float32)
    prob = rng.uniform(0.1, 3.0, (5, 17)).astype(np.float32)  # detectron2's scores are not confined to [0, 1]
    prob[0, 3] = 0.0
    logit = rng.normal(size=(5, 17)).astype(np.float32)
    layouts = {2: xy, 3: np.concatenate([xy, prob[..., None]], -1),
               4: np.concatenate([xy, logit[..., None], prob[..., None]], -1)}
    for c, arr in layouts.items():
        path = tmp_path / f"c{c}.npz"
        np.savez(path, positions_2d={"S1": {"Walking": [arr] * 4}}, metadata=H36M_META)
        pos, score, meta = load_h36m_2d(path, scores=True)
        want = np.ones((5, 17), np.float32) if c == 2 else np.where(prob > 0, prob, 0)
        np.testing.assert_array_equal(score["S1"]["Walking"][2], want)
        np.testing.assert_array_equal(pos["S1"]["Walking"][2][want > 0], xy[want > 0])
        assert np.isnan(pos["S1"]["Walking"][2][want == 0]).all()
        assert meta["keypoints"] == 4 * 85 and meta["missed"] == 4 * int((want == 0).sum())
        assert len(load_h36m_2d(path)) == 2  # without scores=True: (positions, metadata) as before
    # COCO order with scores: a derived joint scores the least of its sources, and is missed with one of them
    coco = np.concatenate([xy, prob[..., None]], -1)
    coco[1, 11, :2] = np.nan  # frame 1 misses COCO's left hip
    np.savez(tmp_path / "coco.npz", positions_2d={"S1": {"Walking": [coco] * 4}}, metadata=COCO_META)
    pos, score, _ = load_h36m_2d(tmp_path / "coco.npz", scores=True)
    pelvis = H36M_17.index("pelvis")
    expect = coco17_to_h36m17(xy, np.where(prob > 0, prob, 0))[1]
    np.testing.assert_array_equal(score["S1"]["Walking"][0][0], expect[0])
    assert score["S1"]["Walking"][0][1, pelvis] == 0 and np.isnan(pos["S1"]["Walking"][0][1, pelvis]).all()
    assert score["S1"]["Walking"][0][0, pelvis] == min(prob[0, 11], prob[0, 12])


@pytest.mark.parametrize("shape, message", [
    ((5, 17, 5), r"has shape \(5, 17, 5\), expected one of \(t, 17, 2\) = x, y .*\(t, 17, 3\) = x, y, score"),
    ((5, 16, 3), r"has shape \(5, 16, 3\), expected one of"),
    ((5, 34), r"has shape \(5, 34\), expected one of"),
])
def test_unsupported_shapes_are_refused_naming_the_file(tmp_path, h36m_files, shape, message):
    root, _, _, cameras = h36m_files
    views = [np.zeros((13, 17, 2), np.float32)] * 3 + [np.zeros(shape, np.float32)]
    np.savez(tmp_path / "odd_2d.npz", positions_2d={"S9": {"Eating": views}}, metadata=H36M_META)
    with pytest.raises(ValueError, match=r"odd_2d\.npz: positions_2d\['S9'\]\['Eating'\]\[3\]: " + message):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, data_2d=tmp_path / "odd_2d.npz",
                        subjects=["S9"], levels_from="none", out=tmp_path / "x.npz")
    np.savez(tmp_path / "three.npz", positions_2d={"S9": {"Eating": views[:3]}}, metadata=H36M_META)
    with pytest.raises(ValueError, match=r"three\.npz: positions_2d\['S9'\]\['Eating'\] must be a list of 4 arrays"):
        load_h36m_2d(tmp_path / "three.npz")
    with pytest.raises(ValueError, match=r"where: must be a numeric"):
        split_scores(np.array([["a"]]), "where")


def test_split_scores_marks_every_kind_of_miss():
    arr = np.ones((1, 17, 3), np.float32)
    arr[0, 0, 0] = np.nan
    arr[0, 1, 1] = np.inf
    arr[0, 2, 2] = 0.0
    arr[0, 3, 2] = -0.5
    arr[0, 4, 2] = np.nan
    xy, score = split_scores(arr, "x")
    np.testing.assert_array_equal(score[0], [0, 0, 0, 0, 0] + [1] * 12)
    assert np.isnan(xy[0, :5]).all() and np.isfinite(xy[0, 5:]).all()
