"""Human3.6M support, part 2: conversion to a dataset (detections, SMPL or our body), the hierarchy from a mesh,
fitting the body, the ``from-h36m`` command and its SMPL file checks."""

import copy
import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given

from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.h36m import H36M_32_NAMES, H36M_32_TO_17, h36m_cameras, h36m_to_dataset, hierarchy_from_smpl
from skeletok.data.views.cameras import normalize_screen
from tests.h36m_fixtures import (  # noqa: F401 (fixtures)
    _cylinder,
    _poses32,
    calibration_files,
    h36m_files,
    mocap,
)


def test_hierarchy_from_smpl_on_a_mesh():
    verts, faces = _cylinder()
    t = 3
    frames = np.stack([verts + [0.1 * i, 0.0, 0.0] for i in range(t)])
    levels = hierarchy_from_smpl(frames, faces)
    assert levels.fine.shape == (t, 96, 3) and levels.dense.shape == (t, 48, 3)
    np.testing.assert_array_equal(np.bincount(levels.fine_to_dense), np.full(48, 2))
    # cluster means: translating the mesh translates every point
    np.testing.assert_allclose(levels.fine[2] - levels.fine[0], np.tile([0.2, 0.0, 0.0], (96, 1)), atol=1e-9)
    # each dense point is the vertex-count-weighted mean of its two fine clusters
    h = levels.hierarchy
    counts = np.bincount(h.vertex_to_level(0)[h.vertex_to_level(0) >= 0], minlength=96)
    for d in range(48):
        kids = np.flatnonzero(levels.fine_to_dense == d)
        expect = (levels.fine[0, kids] * counts[kids, None]).sum(0) / counts[kids].sum()
        np.testing.assert_allclose(levels.dense[0, d], expect, atol=1e-9)
    assert levels.parts_fine is None
    joints = np.zeros((t, 17, 3))
    joints[:, :, 2] = np.linspace(0.1, 1.6, 17)
    joints[:, :, 0] = np.linspace(-0.1, 0.1, 17)
    with_parts = hierarchy_from_smpl(frames, faces, joints=joints, hierarchy=h)
    assert with_parts.parts_fine.shape == (96,) and with_parts.parts_fine.max() < 16
    np.testing.assert_allclose(with_parts.fine, levels.fine)
    with pytest.raises(ValueError, match="vertices must have shape"):
        hierarchy_from_smpl(verts, faces)


def test_h36m_to_dataset_with_detections(h36m_files, tmp_path):
    root, pos3d, _, cameras = h36m_files
    report = {}
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, report=report, levels_from="none",
                          data_2d=root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", out=tmp_path / "h36m.npz")
    d = load_dataset(out)
    assert list(d["sequence_names"]) == ["S1/Directions", "S1/Walking 1", "S9/Eating"]
    assert len(d["world_sparse"]) == 11 + 14 + 12  # the detections (one frame longer) cut to the mocap's length
    assert report["trimmed_2d"] == ["S1/Directions: 2D 12 -> 11 frames", "S1/Walking 1: 2D 15 -> 14 frames",
                                    "S9/Eating: 2D 13 -> 12 frames"]
    assert sorted(d["action_names"]) == ["Directions", "Eating", "Walking"]
    assert d["fps"] == 50.0 and d["det_sparse"].shape == (37, 4, 17, 2)
    assert (d["split"][d["sequence"] == 2] == 1).all() and (d["split"][d["sequence"] < 2] == 0).all()
    # 2D uses each subject's own calibrated cameras
    s9 = h36m_cameras("S9", calibration=cameras.with_name("camera-parameters.json"))  # the other layout
    rows = d["sequence"] == 2
    np.testing.assert_allclose(d["pix_sparse"][rows, 3], s9[3].project(d["world_sparse"][rows]), atol=1e-3)
    np.testing.assert_allclose(d["sequence_cam_R"][2], np.stack([c.R for c in s9]), atol=1e-6)
    assert np.isnan(d["world_dense"]).all() and "sequence_fit_mm" not in d  # levels_from="none": NaN as before
    # without meshes the file carries the committed body's parts (as the default dataset does)
    from skeletok.data.body.model import BodyModel
    from skeletok.data.body.levels import build_levels

    body = BodyModel.load()
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    np.testing.assert_array_equal(d["parts_fine"], levels.parts_fine)
    np.testing.assert_array_equal(d["fine_to_dense"], levels.fine_to_dense)

    test = HierarchicalPoseDataset(out, split="test", use_detections=True)
    item = test[5]
    f, c = int(item["frame"]), int(item["camera"])
    w, h = s9[c].size
    np.testing.assert_allclose(item["sparse_2d"], normalize_screen(d["det_sparse"][f, c], w, h), atol=1e-5)
    assert not torch.allclose(item["sparse_2d"], item["sparse_2d_clean"])
    assert not item["dense_visible"].any() and torch.isfinite(item["dense_2d"]).all()
    X = s9[c].to_camera(d["world_sparse"][f])
    np.testing.assert_allclose(item["sparse_3d"], X - X[0], atol=1e-5)


def test_h36m_to_dataset_with_smpl(h36m_files, tmp_path):
    root, pos3d, _, cameras = h36m_files
    verts, faces = _cylinder()
    smpl = {s: {a: np.stack([verts + p[i, 0] - [0.0, 0.0, 0.9] for i in range(len(p))]) for a, p in acts.items()}
            for s, acts in pos3d.items()}
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=smpl, smpl_faces=faces,
                          out=tmp_path / "h.npz", stride=2)
    d = load_dataset(out)
    assert d["fps"] == 25.0 and len(d["world_sparse"]) == 7 + 6 + 6
    assert np.isfinite(d["world_fine"]).all() and d["parts_fine"].max() < 16 and "sequence_fit_mm" not in d
    # the levels are the meshes' cluster means: the cylinder moves with the pelvis, so every frame's fine centroid
    # sits at the pelvis plus the cylinder's own centroid offset
    offset = d["world_fine"].mean(1) - d["world_sparse"][:, 0]
    np.testing.assert_allclose(offset, np.broadcast_to(offset[0], offset.shape), atol=1e-4)
    ds = HierarchicalPoseDataset(out, split="all")
    assert ds[0]["fine_visible"].all()
    with pytest.raises(ValueError, match="given together"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=smpl, out=tmp_path / "x.npz")
    with pytest.raises(ValueError, match="levels_from='smpl' needs smpl_vertices"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, levels_from="smpl", out=tmp_path / "x.npz")
    with pytest.raises(ValueError, match="smpl_vertices were given but levels_from='body'"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=smpl, smpl_faces=faces,
                        levels_from="body", out=tmp_path / "x.npz")
    with pytest.raises(ValueError, match="levels_from must be"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, levels_from="mesh", out=tmp_path / "x.npz")
    with pytest.raises(ValueError, match="calibration file is required.*camera-parameters.json"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=None, out=tmp_path / "x.npz")


# Fit of the body retargeted onto the fixture's real mocap (BVH takes whose landmarks sit otherwise than the
# body's), as measured: mean 7.5-21 mm per sequence, at most 49 mm (the neck_nose and head top of one take). The
# bounds leave a margin. Without the bone lengths fitted (proportions=False), 36-55 mm, up to 13 cm.
FIT_MEAN_MM, FIT_MAX_MM = 30.0, 80.0


def test_h36m_levels_from_the_body_without_smpl(h36m_files, tmp_path):
    root, pos3d, _, cameras = h36m_files
    report = {}
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, out=tmp_path / "body.npz", report=report)
    d = load_dataset(out)
    n = 11 + 14 + 12
    assert report["levels_from"] == "body" and len(d["world_fine"]) == n
    for key in ("world_dense", "world_fine", "pix_dense", "pix_fine"):
        assert np.isfinite(d[key]).all(), key  # every frame has dense/fine ground truth
    # the fit, per sequence in the file and per subject in the report
    assert d["sequence_fit_mm"].shape == (3,) and (d["sequence_fit_mm"] > 5).all()
    assert (d["sequence_fit_mm"] < FIT_MEAN_MM).all()
    assert report["fit_all"]["frames"] == n and report["fit_all"]["mean_mm"] < FIT_MEAN_MM
    assert report["fit_all"]["max_mm"] < FIT_MAX_MM
    assert report["fit"]["S1"]["frames"] == 25 and report["fit"]["S9"]["frames"] == 12
    # S9 is the same mocap made 6 % smaller: the body is sized to the subject
    assert report["fit"]["S9"]["scale"] < report["fit"]["S1"]["scale"]
    assert report["fit"]["S9"]["scale"] == pytest.approx(0.94 * 0.97, abs=0.03)
    sparse, fine, dense = d["world_sparse"], d["world_fine"], d["world_dense"]
    np.testing.assert_array_equal(sparse[d["sequence"] == 2], pos3d["S9"]["Eating"][:, list(H36M_32_TO_17)])
    # the levels sit on the subject: fine centroid near the joints' centroid, points within the joints' box
    # (grown by the flesh around the joints: hands, feet, head), each level's extent like the joints'
    assert np.linalg.norm(fine.mean(1) - sparse.mean(1), axis=-1).max() < 0.15
    assert np.linalg.norm(dense.mean(1) - fine.mean(1), axis=-1).max() < 0.05
    lo, hi = sparse.min(1, keepdims=True), sparse.max(1, keepdims=True)
    for level in (fine, dense):
        assert (level > lo - 0.2).all() and (level < hi + 0.2).all()
    height = lambda x: x[..., 2].max(1) - x[..., 2].min(1)  # noqa: E731
    np.testing.assert_allclose(height(fine), height(sparse), rtol=0.25)
    # each fine point lies near its part's bone (the file's joints): the body's surface, a few cm out
    from skeletok.skeleton import H36M_17

    a = sparse[:, [p for p, _ in H36M_17.parts]][:, d["parts_fine"]]  # (n, 96, 3) bone start of each point's part
    b = sparse[:, [c for _, c in H36M_17.parts]][:, d["parts_fine"]]
    s = np.clip(((fine - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1), 0, 1)
    dist = np.linalg.norm(fine - (a + s[..., None] * (b - a)), axis=-1)
    assert np.median(dist) < 0.12 and np.percentile(dist, 90) < 0.2
    # projections are the levels seen by each subject's own cameras
    s9 = h36m_cameras("S9", calibration=cameras)
    rows = d["sequence"] == 2
    np.testing.assert_allclose(d["pix_fine"][rows, 1], s9[1].project(fine[rows]), atol=1e-3)
    ds = HierarchicalPoseDataset(out, split="all")
    assert ds[3]["fine_visible"].all() and ds[3]["dense_visible"].all()


def test_fit_body_to_h36m_directly(mocap):
    from skeletok.data.sets.h36m import choose_body_shape, fit_body_to_h36m
    from skeletok.skeleton import H36M_17

    pos = _poses32(mocap, "S1", "Directions", 6)
    fit = fit_body_to_h36m(pos)
    shape, scale = choose_body_shape(pos[:, list(H36M_32_TO_17)])
    assert (fit.shape, fit.scale) == (shape, pytest.approx(scale))
    assert fit.dense.shape == (6, 48, 3) and fit.fine.shape == (6, 96, 3) and fit.error_mm.shape == (6, 17)
    np.testing.assert_allclose(fit.sparse[:, 0], pos[:, 0], atol=1e-5)  # pelvis on pelvis: 0 mm there
    np.testing.assert_allclose(fit.error_mm, 1000 * np.linalg.norm(fit.sparse - pos[:, list(H36M_32_TO_17)], axis=-1),
                               rtol=1e-5)
    assert fit.error_mm.mean() < FIT_MEAN_MM
    # 17-joint files retarget too (no toes: the feet keep the shin's turn), close to the 32-joint fit
    fit17 = fit_body_to_h36m(pos[:, list(H36M_32_TO_17)], shape=fit.shape, scale=fit.scale)
    assert abs(fit17.error_mm.mean() - fit.error_mm.mean()) < 10
    # the bones take the file's lengths: legs (directions matched exactly by the retargeting) land on the joints
    legs = [H36M_17.index(f"{s}_{j}") for s in ("left", "right") for j in ("hip", "knee", "ankle")]
    assert fit.error_mm[:, legs].max() < 2.0
    np.testing.assert_allclose(np.linalg.norm(fit.sparse[:, 5] - fit.sparse[:, 4], axis=-1),
                               np.linalg.norm(pos[:, 7] - pos[:, 6], axis=-1), atol=2e-3)  # left thigh, metres
    plain = fit_body_to_h36m(pos, shape=fit.shape, scale=fit.scale, proportions=False)
    assert plain.error_mm.mean() > fit.error_mm.mean() + 10  # the body's own proportions fit worse
    # moving the subject moves the levels with it
    moved = fit_body_to_h36m(pos + np.float32([1.0, -0.5, 0.0]), shape=fit.shape, scale=fit.scale)
    np.testing.assert_allclose(moved.fine - fit.fine, np.broadcast_to([1.0, -0.5, 0.0], fit.fine.shape), atol=1e-4)
    with pytest.raises(ValueError, match="positions must have shape"):
        fit_body_to_h36m(pos[:, :20])


def test_from_h36m_command(h36m_files, tmp_path, capsys):
    from skeletok.cli import main

    root, _, _, cameras = h36m_files
    out = tmp_path / "s9.npz"
    data_3d = str(root / "data_3d_h36m.npz")
    assert main(["data", "from-h36m", data_3d, "--cameras", str(cameras), "--data-2d",
                 str(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz"), "--subjects", "S9", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (12 frames x 4 cameras, 1 sequences" in printed
    assert "note: S9/Eating: 2D 13 -> 12 frames" in printed
    assert "dense/fine levels: skeletok's body retargeted" in printed
    assert re.search(r"S9 +body shape \d, size x0\.9\d\d, 12 frames: mean \d+\.\d mm", printed)
    assert np.isfinite(load_dataset(out)["world_fine"]).all()
    assert main(["data", "from-h36m", data_3d, "--cameras", str(cameras), "--subjects", "S9", "--levels", "none",
                 "--out", str(out)]) == 0
    assert "only the sparse-only lifter trains on this file" in capsys.readouterr().out
    assert np.isnan(load_dataset(out)["world_fine"]).all()
    assert main(["data", "from-h36m", data_3d, "--cameras", str(cameras), "--subjects", "S2", "--out", str(out)]) == 2
    assert "skeletok: error" in capsys.readouterr().err
    # without --cameras: say where the calibration comes from
    assert main(["data", "from-h36m", data_3d, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs --cameras FILE" in err and "camera-parameters.json" in err and "VideoPose3D" in err
    assert main(["data", "from-h36m", data_3d, "--cameras", str(root / "nope.json"), "--out", str(out)]) == 2
    assert "nope.json' does not exist" in capsys.readouterr().err


def test_show_h36m_without_mesh(h36m_files, tmp_path):
    from skeletok.data.sets.show import show_frame

    root, _, _, cameras = h36m_files
    data = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, out=tmp_path / "h.npz", subjects=["S1"])
    out = show_frame(data, 4, camera=2, out=tmp_path / "h36m.png", mesh=False)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no mesh source"):
        show_frame(data, 4, out=tmp_path / "x.png")


@pytest.fixture(scope="module")
def smpl_like(h36m_files):
    """Stand-in SMPL fits of the fixture: skeletok's own body retargeted onto each sequence's 32 joints, every frame
    (``{subject: {action: (t, v, 3)}}`` world metres) and the body's faces."""
    from skeletok.data.body import BodyModel
    from skeletok.data.motion import Motion
    from skeletok.data.motion.retarget import retarget
    from skeletok.data.sets.h36m import H36M_32_PARENTS, H36M_MAPPING

    _, pos3d, _, _ = h36m_files
    body = BodyModel.load()
    verts = {s: {a: retarget(Motion(f"{s}/{a}", list(H36M_32_NAMES), np.array(H36M_32_PARENTS), p.astype(np.float64),
                                    50.0), body, mapping=H36M_MAPPING, scale=1.0).vertices.astype(np.float32)
                 for a, p in acts.items()} for s, acts in pos3d.items()}
    return verts, np.asarray(body.faces)


def _save_smpl(path, verts, faces, /, **changes):
    """Write a SMPL file (faces + one array per "<subject>/<action>"); ``changes`` replace (None: drop) keys."""
    arrays = {"faces": faces, **{f"{s}/{a}": v for s, acts in verts.items() for a, v in acts.items()}}
    for key, value in changes.items():
        arrays.pop(key) if value is None else arrays.__setitem__(key, value)
    np.savez(path, **arrays)
    return path


def test_from_h36m_with_a_smpl_file(h36m_files, smpl_like, tmp_path, capsys):
    from skeletok.cli import main

    root, pos3d, _, cameras = h36m_files
    verts, faces = smpl_like
    data_3d = root / "data_3d_h36m.npz"
    smpl = _save_smpl(tmp_path / "smpl.npz", verts, faces)
    out = tmp_path / "cli.npz"
    # --smpl implies --levels smpl
    assert main(["data", "from-h36m", str(data_3d), "--cameras", str(cameras), "--smpl", str(smpl), "--stride", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"the SMPL meshes of {smpl} ({verts['S1']['Directions'].shape[1]} vertices, {len(faces)} faces)" in printed
    d = load_dataset(out)
    python = load_dataset(h36m_to_dataset(data_3d, cameras=cameras, smpl_vertices=verts, smpl_faces=faces, stride=2,
                                          out=tmp_path / "python.npz"))
    for key in ("world_dense", "world_fine", "pix_dense", "pix_fine", "parts_fine", "parts_dense", "fine_to_dense"):
        assert np.isfinite(d[key]).all(), key
        np.testing.assert_array_equal(d[key], python[key], err_msg=key)
    assert len(d["world_fine"]) == 7 + 6 + 6 and "sequence_fit_mm" not in d
    # the levels are the meshes' cluster means: on the body that stands on the joints (unsized: S9 is smaller)
    assert np.linalg.norm(d["world_fine"].mean(1) - d["world_sparse"].mean(1), axis=-1).max() < 0.2
    # --levels smpl with the file says the same; extra keys (another subject) are ignored
    extra = _save_smpl(tmp_path / "extra.npz", verts, faces, **{"S5/Walking": verts["S9"]["Eating"]})
    assert main(["data", "from-h36m", str(data_3d), "--cameras", str(cameras), "--levels", "smpl", "--smpl",
                 str(extra), "--subjects", "S9", "--out", str(out)]) == 0
    assert "the SMPL meshes of" in capsys.readouterr().out
    s9 = load_dataset(out)
    assert list(s9["sequence_names"]) == ["S9/Eating"] and np.isfinite(s9["world_fine"]).all()


def _smpl_errors(verts, faces):
    bad_nan = verts["S1"]["Walking 1"].copy()
    bad_nan[3, 10] = np.nan
    return {
        "no_faces": ({"faces": None}, "no 'faces' array"),
        "bad_faces": ({"faces": faces[:, :2]}, r"'faces' must be \(f, 3\) triangles"),
        "float_faces": ({"faces": faces.astype(np.float32)}, "'faces' must hold integer"),
        "missing": ({"S1/Walking 1": None, "S9/Eating": None},
                    r"no vertices for 2 of the 3 sequences of .*data_3d_h36m.npz to convert: 'S1/Walking 1', "
                    r"'S9/Eating' \(the file has 1 vertex arrays: 'S1/Directions'\)"),
        "shape": ({"S1/Directions": verts["S1"]["Directions"][..., :2]}, r"'S1/Directions' must be \(t, v, 3\)"),
        "vertex_count": ({"S9/Eating": verts["S9"]["Eating"][:, :100]}, "'S9/Eating' has 100 vertices but"),
        "frames": ({"S1/Walking 1": verts["S1"]["Walking 1"][:-1]},
                   "'S1/Walking 1' has 13 frames but .*data_3d_h36m.npz has 14"),
        "nan": ({"S1/Walking 1": bad_nan}, r"'S1/Walking 1' holds 3 NaN/inf values \(first in frame 3\)"),
        "millimetres": ({"S9/Eating": 1000 * verts["S9"]["Eating"]}, "world frame and in metres"),
    }


@pytest.mark.parametrize("case", ["no_faces", "bad_faces", "float_faces", "missing", "shape", "vertex_count",
                                  "frames", "nan", "millimetres"])
def test_from_h36m_refuses_bad_smpl_files(h36m_files, smpl_like, tmp_path, capsys, case):
    from skeletok.cli import main

    root, _, _, cameras = h36m_files
    changes, message = _smpl_errors(*smpl_like)[case]
    smpl = _save_smpl(tmp_path / f"{case}.npz", *smpl_like, **changes)
    assert main(["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--cameras", str(cameras), "--smpl", str(smpl),
                 "--levels", "smpl", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"skeletok: error: {smpl}: ") and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not (tmp_path / "x.npz").exists()


def test_from_h36m_smpl_options(h36m_files, smpl_like, tmp_path, capsys):
    from skeletok.cli import main

    root, _, _, cameras = h36m_files
    base = ["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--cameras", str(cameras), "--out",
            str(tmp_path / "x.npz")]
    assert main(base + ["--levels", "smpl"]) == 2
    err = capsys.readouterr().err
    assert "--levels smpl needs --smpl FILE.npz" in err and "'faces' (f, 3) int" in err
    smpl = _save_smpl(tmp_path / "smpl.npz", *smpl_like)
    assert main(base + ["--levels", "none", "--smpl", str(smpl)]) == 2
    assert "it cannot go with --levels none" in capsys.readouterr().err
    assert main(base + ["--smpl", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz' does not exist" in capsys.readouterr().err
    (tmp_path / "text.npz").write_text("not a zip")
    assert main(base + ["--smpl", str(tmp_path / "text.npz")]) == 2
    assert f"{tmp_path / 'text.npz'}: not an .npz file" in capsys.readouterr().err
    # the Python API takes the file too, and checks a dict alike (naming smpl_vertices)
    verts, faces = smpl_like
    with pytest.raises(ValueError, match="smpl_faces must not be given with a SMPL file"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=smpl, smpl_faces=faces,
                        out=tmp_path / "x.npz")
    short = {s: {a: v[:-1] for a, v in acts.items()} for s, acts in verts.items()}
    with pytest.raises(ValueError, match="smpl_vertices: 'S1/Directions' has 10 frames but"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=short, smpl_faces=faces,
                        out=tmp_path / "x.npz")
