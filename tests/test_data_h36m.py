import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from skeletok.data.cameras import normalize_screen
from skeletok.data.dataset import HierarchicalPoseDataset
from skeletok.data.fileformat import load_dataset
from skeletok.data.h36m import (
    CAMERA_IDS,
    H36M_32_TO_17,
    _calibration,
    h36m_action,
    h36m_cameras,
    h36m_to_dataset,
    hierarchy_from_smpl,
    load_h36m_2d,
    load_h36m_3d,
)

ACTIONS = {"S1": {"Walking 1": 14, "Directions": 11}, "S9": {"Eating": 12}}


def _poses32(rng, t):
    base = np.array([0.0, 0.0, 0.95]) + rng.normal(scale=0.3, size=(32, 3)) * [1.0, 1.0, 2.0]
    drift = np.linspace(0, 0.3, t)[:, None, None] * np.array([1.0, 0.5, 0.0])
    return (base + drift + rng.normal(scale=0.01, size=(t, 32, 3))).astype(np.float32)


def _cylinder(rows=12, cols=20, radius=0.2, height=1.6):
    ang = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    z = np.linspace(0.1, height, rows)
    verts = np.array([[radius * np.cos(a), radius * np.sin(a), zz] for zz in z for a in ang])
    faces = []
    for r in range(rows - 1):
        for c in range(cols):
            a, b = r * cols + c, r * cols + (c + 1) % cols
            faces += [[a, b, a + cols], [b, b + cols, a + cols]]
    return verts, np.array(faces)


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("h36m")
    pos3d = {s: {a: _poses32(rng, t) for a, t in acts.items()} for s, acts in ACTIONS.items()}
    pos2d = {}
    for s, acts in pos3d.items():
        cams = h36m_cameras(s)
        # detections: the projection plus noise, one frame shorter than the mocap (as in the real files)
        pos2d[s] = {a: [(c.project(p[:, list(H36M_32_TO_17)]) + rng.normal(scale=2.0, size=(len(p), 17, 2)))[:-1]
                        .astype(np.float32) for c in cams] for a, p in acts.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=pos2d, metadata=meta)
    return root, pos3d, pos2d


def test_published_cameras():
    calib = _calibration()
    assert [c["id"] for c in calib["intrinsics"]] == list(CAMERA_IDS)
    assert set(calib["extrinsics"]) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    for subject in calib["extrinsics"]:
        cams = h36m_cameras(subject)
        for cam, extr in zip(cams, calib["extrinsics"][subject]):
            assert np.linalg.norm(extr["orientation"]) == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(cam.position, np.array(extr["translation"]) / 1000, atol=1e-9)
            w, x, y, z = extr["orientation"]
            q_matrix = Rotation.from_quat([x, y, z, w]).as_matrix()  # camera -> world
            np.testing.assert_allclose(cam.R, q_matrix.T, atol=1e-6)
            # the capture volume's centre is in front of every camera and lands inside its image
            centre = np.array([[0.0, 0.0, 0.9]])
            assert cam.to_camera(centre)[0, 2] > 3.0
            pix = cam.project(centre)[0]
            assert 0 < pix[0] < cam.size[0] and 0 < pix[1] < cam.size[1]
    assert h36m_cameras("S1")[0].focal[0] == pytest.approx(1145.0494384765625)
    assert h36m_cameras("S1")[0].size == (1000, 1002)
    assert h36m_cameras("S1", distortion=False)[0].radial is None
    with pytest.raises(ValueError, match="published extrinsics"):
        h36m_cameras("S2")


def test_loaders(h36m_files):
    root, pos3d, pos2d = h36m_files
    data = load_h36m_3d(root / "data_3d_h36m.npz")
    assert set(data) == {"S1", "S9"}
    np.testing.assert_array_equal(data["S1"]["Walking 1"], pos3d["S1"]["Walking 1"][:, list(H36M_32_TO_17)])
    assert data["S9"]["Eating"].shape == (12, 17, 3)
    only = load_h36m_3d(root / "data_3d_h36m.npz", subjects=["S9"])
    assert list(only) == ["S9"]
    det, meta = load_h36m_2d(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz")
    assert meta["layout_name"] == "h36m" and len(det["S1"]["Directions"]) == 4
    np.testing.assert_array_equal(det["S1"]["Directions"][2], pos2d["S1"]["Directions"][2])
    with pytest.raises(ValueError, match="subjects.*S5"):
        load_h36m_3d(root / "data_3d_h36m.npz", subjects=["S5"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_h36m_3d(root / "missing.npz")
    np.savez(root / "wrong.npz", positions=np.zeros(3))
    with pytest.raises(ValueError, match=r"wrong\.npz.*'positions_3d'"):
        load_h36m_3d(root / "wrong.npz")
    np.savez(root / "bad_shape.npz", positions_3d={"S1": {"Walk": np.zeros((3, 20, 3))}})
    with pytest.raises(ValueError, match="must be \\(t, 32, 3\\)"):
        load_h36m_3d(root / "bad_shape.npz")


def test_h36m_action_names():
    assert h36m_action("Walking 1") == "Walking" and h36m_action("SittingDown 2") == "SittingDown"
    assert h36m_action("TakingPhoto") == "Photo" and h36m_action("WalkingDog 1") == "WalkDog"
    assert h36m_action("Jogging 2") == "jogging"  # outside the 15: the generic name rule


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
    root, pos3d, _ = h36m_files
    out = h36m_to_dataset(root / "data_3d_h36m.npz", data_2d=root / "data_2d_h36m_cpn_ft_h36m_dbb.npz",
                          out=tmp_path / "h36m.npz")
    d = load_dataset(out)
    assert list(d["sequence_names"]) == ["S1/Directions", "S1/Walking 1", "S9/Eating"]
    assert len(d["world_sparse"]) == 10 + 13 + 11  # trimmed to the detections' length
    assert sorted(d["action_names"]) == ["Directions", "Eating", "Walking"]
    assert d["fps"] == 50.0 and d["det_sparse"].shape == (34, 4, 17, 2)
    assert (d["split"][d["sequence"] == 2] == 1).all() and (d["split"][d["sequence"] < 2] == 0).all()
    # 2D uses each subject's own calibrated cameras
    s9 = h36m_cameras("S9")
    rows = d["sequence"] == 2
    np.testing.assert_allclose(d["pix_sparse"][rows, 3], s9[3].project(d["world_sparse"][rows]), atol=1e-3)
    np.testing.assert_allclose(d["sequence_cam_R"][2], np.stack([c.R for c in s9]), atol=1e-6)
    assert np.isnan(d["world_dense"]).all()
    # without meshes the file carries the committed body's parts (as the default dataset does)
    from skeletok.data.body import BodyModel
    from skeletok.data.levels import build_levels

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
    root, pos3d, _ = h36m_files
    verts, faces = _cylinder()
    smpl = {s: {a: np.stack([verts + p[i, 0] - [0.0, 0.0, 0.9] for i in range(len(p))]) for a, p in acts.items()}
            for s, acts in pos3d.items()}
    out = h36m_to_dataset(root / "data_3d_h36m.npz", smpl_vertices=smpl, smpl_faces=faces, out=tmp_path / "h.npz",
                          stride=2)
    d = load_dataset(out)
    assert d["fps"] == 25.0 and len(d["world_sparse"]) == 7 + 6 + 6
    assert np.isfinite(d["world_fine"]).all() and d["parts_fine"].max() < 16
    ds = HierarchicalPoseDataset(out, split="all")
    assert ds[0]["fine_visible"].all()
    with pytest.raises(ValueError, match="given together"):
        h36m_to_dataset(root / "data_3d_h36m.npz", smpl_vertices=smpl, out=tmp_path / "x.npz")


def test_from_h36m_command(h36m_files, tmp_path, capsys):
    from skeletok.cli import main

    root, _, _ = h36m_files
    out = tmp_path / "s9.npz"
    assert main(["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--data-2d",
                 str(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz"), "--subjects", "S9", "--out", str(out)]) == 0
    assert f"wrote {out} (11 frames x 4 cameras, 1 sequences" in capsys.readouterr().out
    assert main(["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--subjects", "S2", "--out", str(out)]) == 2
    assert "skeletok: error" in capsys.readouterr().err


def test_show_h36m_without_mesh(h36m_files, tmp_path):
    from skeletok.data.show import show_frame

    root, _, _ = h36m_files
    data = h36m_to_dataset(root / "data_3d_h36m.npz", out=tmp_path / "h.npz", subjects=["S1"])
    out = show_frame(data, 4, camera=2, out=tmp_path / "h36m.png", mesh=False)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no mesh source"):
        show_frame(data, 4, out=tmp_path / "x.png")
