import copy
import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from skeletok.data.views.cameras import look_at, normalize_screen
from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.h36m import (
    CAMERA_IDS,
    H36M_32_TO_17,
    h36m_action,
    h36m_cameras,
    h36m_to_dataset,
    hierarchy_from_smpl,
    load_h36m_2d,
    load_h36m_3d,
    load_h36m_cameras,
)

ACTIONS = {"S1": {"Walking 1": 14, "Directions": 11}, "S9": {"Eating": 12}}
CALIBRATED = ("S1", "S5", "S9", "S11")
# Camera 0's intrinsics: round made-up numbers, so projections can be checked by hand.
CAM0 = dict(focal=(1146.0, 1144.0), centre=(510.0, 505.0), radial=(-0.2, 0.24, -0.003), tangential=(-0.001, 0.002))


def _synthetic_calibration():
    """A SYNTHETIC Human3.6M-like calibration (made-up numbers, not the dataset's) in both layouts.

    About 1145 px focal, 1000 x 1002 / 1000 x 1000 images, cameras about 5 m from the origin,
    1.4-1.7 m up, looking at the capture volume. Returns ``(videopose3d_layout, camera_parameters_layout)``.
    """
    rng = np.random.default_rng(7)
    intr_a, intr_b, extr_a, extr_b = [], {}, {"S2": [{}, {}, {}, {}]}, {}
    for i, cam_id in enumerate(CAMERA_IDS):
        w, h = (1000, 1002) if i in (0, 3) else (1000, 1000)
        p = CAM0 if i == 0 else dict(focal=1145 + rng.uniform(-3, 3, 2), centre=500 + rng.uniform(-8, 8, 2),
                                     radial=np.array([-0.2, 0.24, -0.003]) + rng.uniform(-0.01, 0.01, 3),
                                     tangential=rng.uniform(-0.002, 0.002, 2))
        (fx, fy), (cx, cy), (k1, k2, k3), (p1, p2) = p["focal"], p["centre"], p["radial"], p["tangential"]
        intr_a.append({"id": cam_id, "center": [cx, cy], "focal_length": [fx, fy], "radial_distortion": [k1, k2, k3],
                       "tangential_distortion": [p1, p2], "res_w": w, "res_h": h, "azimuth": 70})
        intr_b[cam_id] = {"calibration_matrix": [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]],
                          "distortion": [k1, k2, p1, p2, k3]}
    for s in CALIBRATED:
        extr_a[s], extr_b[s] = [], {}
        for cam_id, az in zip(CAMERA_IDS, (70.0, -70.0, 110.0, -110.0)):
            a = np.deg2rad(az + rng.uniform(-5, 5))
            eye = np.array([5.0 * np.cos(a), 5.0 * np.sin(a), rng.uniform(1.4, 1.7)]) + rng.uniform(-0.2, 0.2, 3)
            R = look_at(eye, [0.0, 0.0, 0.9] + rng.uniform(-0.2, 0.2, 3)).R  # world -> camera
            x, y, z, w = Rotation.from_matrix(R.T).as_quat()  # camera -> world, scipy's (x, y, z, w)
            extr_a[s].append({"orientation": [w, x, y, z], "translation": (eye * 1000).tolist()})
            extr_b[s][cam_id] = {"R": R.tolist(), "t": (-R @ eye * 1000)[:, None].tolist()}
    return {"intrinsics": intr_a, "extrinsics": extr_a}, {"intrinsics": intr_b, "extrinsics": extr_b}


@pytest.fixture(scope="module")
def calibration_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_calibration")
    layout_a, layout_b = _synthetic_calibration()
    (root / "videopose3d_cameras.json").write_text(json.dumps(layout_a))
    (root / "camera-parameters.json").write_text(json.dumps(layout_b))
    return root / "videopose3d_cameras.json", root / "camera-parameters.json", layout_a, layout_b


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
def h36m_files(tmp_path_factory, calibration_files):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("h36m")
    pos3d = {s: {a: _poses32(rng, t) for a, t in acts.items()} for s, acts in ACTIONS.items()}
    pos2d = {}
    for s, acts in pos3d.items():
        cams = h36m_cameras(s, calibration=calibration_files[1])
        # detections: the projection plus noise, one frame shorter than the mocap (as in the real files)
        pos2d[s] = {a: [(c.project(p[:, list(H36M_32_TO_17)]) + rng.normal(scale=2.0, size=(len(p), 17, 2)))[:-1]
                        .astype(np.float32) for c in cams] for a, p in acts.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=pos2d, metadata=meta)
    return root, pos3d, pos2d, calibration_files[0]


def test_both_layouts_load_to_the_same_cameras(calibration_files):
    path_a, path_b, layout_a, layout_b = calibration_files
    cams_a, cams_b = load_h36m_cameras(path_a), load_h36m_cameras(path_b)
    assert sorted(cams_a) == sorted(cams_b) == sorted(CALIBRATED)  # S2's empty entries are skipped
    for s in CALIBRATED:
        assert [c.name for c in cams_a[s]] == [c.name for c in cams_b[s]] == list(CAMERA_IDS)
        for a, b in zip(cams_a[s], cams_b[s]):
            assert a.size == b.size
            for field in ("R", "t", "focal", "centre", "radial", "tangential"):
                np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=0, atol=1e-9, err_msg=field)
        for cam, extr in zip(cams_a[s], layout_a["extrinsics"][s]):
            np.testing.assert_allclose(cam.position, np.array(extr["translation"]) / 1000, atol=1e-9)
            centre = cam.to_camera(np.array([[0.0, 0.0, 0.9]]))  # the capture volume is in front, in the image
            assert 4.0 < centre[0, 2] < 6.0
            pix = cam.project(np.array([[0.0, 0.0, 0.9]]))[0]
            assert 0 < pix[0] < cam.size[0] and 0 < pix[1] < cam.size[1]
    assert [c.size for c in cams_b["S1"]] == [(1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)]
    # h36m_cameras takes the path, the parsed JSON or the loaded mapping
    from_dict = h36m_cameras("S9", calibration=layout_b)
    from_loaded = h36m_cameras("S9", calibration=cams_a)
    np.testing.assert_allclose(from_dict[2].R, from_loaded[2].R, atol=1e-9)
    plain = h36m_cameras("S1", calibration=path_b, distortion=False)
    assert plain[0].radial is None and plain[0].tangential is None and plain[0].focal[0] == 1146.0
    with pytest.raises(ValueError, match=r"camera extrinsics in .*videopose3d_cameras\.json.*'S2'"):
        h36m_cameras("S2", calibration=path_a)


@pytest.mark.parametrize("layout", [0, 1])
def test_projection_by_hand(calibration_files, layout):
    cam = load_h36m_cameras(calibration_files[layout])["S5"][0]
    # world points whose camera-frame coordinates are (0, 0, 5), (0.5, 0, 5) and (0, -0.5, 5) metres
    pts = cam.position + np.array([[0.0, 0.0, 5.0], [0.5, 0.0, 5.0], [0.0, -0.5, 5.0]]) @ cam.R
    np.testing.assert_allclose(cam.to_camera(pts), [[0.0, 0.0, 5.0], [0.5, 0.0, 5.0], [0.0, -0.5, 5.0]], atol=1e-9)
    # on the axis: the principal point. (0.1, 0): r2 = 0.01, radial 1 - 0.002 + 0.000024 - 0.000000003,
    # p.a = -0.0001, so a'x = 0.1 * 0.997923997 - 0.001 * 0.01 = 0.0997823997, a'y = 0.002 * 0.01 = 0.00002;
    # (0, -0.1): p.a = -0.0002, a'y = -0.1 * 0.997823997 + 0.00002, a'x = -0.001 * 0.01.
    expected = [[510.0, 505.0],
                [510.0 + 1146.0 * 0.0997823997, 505.0 + 1144.0 * 0.00002],
                [510.0 - 1146.0 * 0.00001, 505.0 + 1144.0 * -0.0997623997]]
    np.testing.assert_allclose(cam.project(pts), expected, atol=1e-6)
    plain = h36m_cameras("S5", calibration=calibration_files[layout], distortion=False)[0]
    np.testing.assert_allclose(plain.project(pts), [[510.0, 505.0], [624.6, 505.0], [510.0, 390.6]], atol=1e-9)


def _drop(d, *keys):
    for k in keys[:-1]:
        d = d[k]
    del d[keys[-1]]


MALFORMED = [
    (0, lambda c: _drop(c, "intrinsics", 1, "focal_length"), r"field 'intrinsics\[1\]\.focal_length' is missing"),
    (0, lambda c: c["extrinsics"]["S5"][2].update(translation=[1.0, 2.0]), r"'extrinsics\.S5\[2\]\.translation' must"),
    (0, lambda c: c["extrinsics"]["S1"].pop(), r"'extrinsics\.S1' must be a list of 4"),
    (0, lambda c: _drop(c, "extrinsics"), r"field 'extrinsics' is missing"),
    (1, lambda c: _drop(c, "extrinsics", "S9", "58860488", "R"), r"field 'extrinsics\.S9\.58860488\.R' is missing"),
    (1, lambda c: _drop(c, "intrinsics", "60457274"), r"field 'intrinsics' lacks cameras \['60457274'\]"),
    (1, lambda c: c["intrinsics"]["55011271"]["calibration_matrix"][0].__setitem__(1, 3.0),
     r"'intrinsics\.55011271\.calibration_matrix' must be \[\[fx, 0, cx\]"),
    (1, lambda c: c["intrinsics"]["55011271"].update(distortion=[0.1, 0.2]), r"'intrinsics\.55011271\.distortion'"),
    (1, lambda c: c["extrinsics"]["S1"]["54138969"].update(R=np.diag([2.0, 1.0, 1.0]).tolist()),
     r"'extrinsics\.S1\.54138969' gives an invalid camera: R must be a rotation"),
    (1, lambda c: c.update(intrinsics=3), r"'intrinsics' must be a list .* or an object"),
]


@pytest.mark.parametrize("layout, corrupt, message", MALFORMED)
def test_malformed_calibration_names_the_file_and_field(calibration_files, tmp_path, layout, corrupt, message):
    data = copy.deepcopy(calibration_files[2 + layout])
    corrupt(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"broken\.json: " + (".*" if message.startswith("'") else "") + message):
        load_h36m_cameras(path)


def test_calibration_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"intrinsics": [],\n "extrinsics": {,}}')
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON at line 2"):
        load_h36m_cameras(bad)
    with pytest.raises(FileNotFoundError, match="missing.json' does not exist.*camera-parameters.json"):
        load_h36m_cameras(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="calibration file is required"):
        h36m_cameras("S1", calibration=None)


def test_loaders(h36m_files):
    root, pos3d, pos2d, _ = h36m_files
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
    root, pos3d, _, cameras = h36m_files
    out = h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras,
                          data_2d=root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", out=tmp_path / "h36m.npz")
    d = load_dataset(out)
    assert list(d["sequence_names"]) == ["S1/Directions", "S1/Walking 1", "S9/Eating"]
    assert len(d["world_sparse"]) == 10 + 13 + 11  # trimmed to the detections' length
    assert sorted(d["action_names"]) == ["Directions", "Eating", "Walking"]
    assert d["fps"] == 50.0 and d["det_sparse"].shape == (34, 4, 17, 2)
    assert (d["split"][d["sequence"] == 2] == 1).all() and (d["split"][d["sequence"] < 2] == 0).all()
    # 2D uses each subject's own calibrated cameras
    s9 = h36m_cameras("S9", calibration=cameras.with_name("camera-parameters.json"))  # the other layout
    rows = d["sequence"] == 2
    np.testing.assert_allclose(d["pix_sparse"][rows, 3], s9[3].project(d["world_sparse"][rows]), atol=1e-3)
    np.testing.assert_allclose(d["sequence_cam_R"][2], np.stack([c.R for c in s9]), atol=1e-6)
    assert np.isnan(d["world_dense"]).all()
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
    assert np.isfinite(d["world_fine"]).all() and d["parts_fine"].max() < 16
    ds = HierarchicalPoseDataset(out, split="all")
    assert ds[0]["fine_visible"].all()
    with pytest.raises(ValueError, match="given together"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, smpl_vertices=smpl, out=tmp_path / "x.npz")
    with pytest.raises(ValueError, match="calibration file is required.*camera-parameters.json"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=None, out=tmp_path / "x.npz")


def test_from_h36m_command(h36m_files, tmp_path, capsys):
    from skeletok.cli import main

    root, _, _, cameras = h36m_files
    out = tmp_path / "s9.npz"
    data_3d = str(root / "data_3d_h36m.npz")
    assert main(["data", "from-h36m", data_3d, "--cameras", str(cameras), "--data-2d",
                 str(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz"), "--subjects", "S9", "--out", str(out)]) == 0
    assert f"wrote {out} (11 frames x 4 cameras, 1 sequences" in capsys.readouterr().out
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
