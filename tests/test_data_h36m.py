import copy
import json
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from skeletok.data.views.cameras import look_at, normalize_screen
from tests.h36m_detections import detector_like_2d
from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.h36m import (
    CAMERA_IDS,
    H36M_32_NAMES,
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
SCORED_2D = "data_2d_h36m_scored.npz"  # the fixture's scored detections, (t, 17, 3) with misses
BLANK_FRAMES = {("S1", "Walking 1", 0): (5,), ("S9", "Eating", 1): (3,)}  # (subject, action, camera): nobody found
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


def mocap_h36m32(motion, start=0, t=None, size=1.0):
    """Human3.6M's 32 joints (VideoPose3D order, metres, Z-up) from a shipped real mocap take (canonical names).

    The H36M pelvis is the mid-point of the hips; the thorax the mid-point of the clavicle heads; the spine base
    sits on the pelvis and the clavicle copies on the thorax (as in the real data); toes missing from a take are
    put on the foot's line, the hand landmarks on the wrist. The subject is scaled by ``size`` about the ground
    point under its first pelvis and its mean pelvis moved onto x = y = 0 (the capture volume's centre).
    """
    names = motion.joint_names
    p = motion.positions[start: None if t is None else start + t].astype(np.float64)

    def get(k):
        return p[:, names.index(k)]

    out = {}
    pelvis = 0.5 * (get("LeftUpLeg") + get("RightUpLeg"))
    for side in ("Left", "Right"):
        s = side.lower()
        foot = get(f"{side}Foot")
        tip = get(f"{side}ToeBase_End") if f"{side}ToeBase_End" in names else None
        toe = get(f"{side}ToeBase") if f"{side}ToeBase" in names else foot + 0.7 * (tip - foot)
        tip = tip if tip is not None else toe + 0.5 * (toe - foot)
        out.update({f"{s}_hip": get(f"{side}UpLeg"), f"{s}_knee": get(f"{side}Leg"), f"{s}_ankle": foot,
                    f"{s}_toe": toe, f"{s}_toe_tip": tip, f"{s}_shoulder": get(f"{side}Arm"),
                    f"{s}_elbow": get(f"{side}ForeArm"), f"{s}_wrist": get(f"{side}Hand")})
        for extra in ("thumb", "thumb_tip", "hand", "hand_tip"):
            out[f"{s}_{extra}"] = get(f"{side}Hand")
    thorax = 0.5 * (get("LeftShoulder") + get("RightShoulder"))
    out.update(pelvis=pelvis, spine_base=pelvis, spine=get("Spine"), thorax=thorax, neck_nose=get("Head"),
               head=get("Head_End"), left_clavicle=thorax, right_clavicle=thorax)
    pos = np.stack([out[k] for k in H36M_32_NAMES], axis=1)
    ground = np.append(pos[0, 0, :2], 0.0)
    pos = ground + size * (pos - ground)
    pos[..., :2] -= pos[:, 0, :2].mean(0)
    return pos.astype(np.float32)


@pytest.fixture(scope="module")
def mocap():
    from skeletok.data.motion.assets import load_motion_assets

    return {m.name: m for m in load_motion_assets(sources=["bvh_mixamo", "bvh_mocapbank"])}


def _poses32(mocap, subject, action, t):
    """Each fixture sequence's joints: real mocap takes, S9 a smaller subject (x0.94)."""
    take, start = {("S1", "Walking 1"): ("bvhtoolbox/test_mocapbank", 0), ("S1", "Directions"):
                   ("bvhtoolbox/test_freebvh", 20), ("S9", "Eating"): ("bvhtoolbox/test_mocapbank", 200)}[subject, action]
    return mocap_h36m32(mocap[take], start, t, size=0.94 if subject == "S9" else 1.0)


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
def h36m_files(tmp_path_factory, calibration_files, mocap):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("h36m")
    pos3d = {s: {a: _poses32(mocap, s, a, t) for a, t in acts.items()} for s, acts in ACTIONS.items()}
    pos2d = {}
    for s, acts in pos3d.items():
        cams = h36m_cameras(s, calibration=calibration_files[1])
        # detections: the projection plus noise, one frame longer than the mocap (as in the real files, which
        # VideoPose3D cuts to the mocap's length)
        pos2d[s] = {a: [(c.project(np.concatenate([p, p[-1:]])[:, list(H36M_32_TO_17)])
                         + rng.normal(scale=2.0, size=(len(p) + 1, 17, 2))).astype(np.float32) for c in cams]
                    for a, p in acts.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez_compressed(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=pos2d, metadata=meta)
    # a scored detector's file: (t, 17, 3) = x, y, score, with misses (NaN, or score 0) and blank frames
    rng = np.random.default_rng(1)
    scored = {}
    for s, acts in pos3d.items():
        cams = h36m_cameras(s, calibration=calibration_files[1])
        scored[s] = {a: [detector_like_2d(c.project(np.concatenate([p, p[-1:]])[:, list(H36M_32_TO_17)]), rng,
                                          blank_frames=BLANK_FRAMES.get((s, a, k), ())) for k, c in enumerate(cams)]
                     for a, p in acts.items()}
    np.savez_compressed(root / SCORED_2D, positions_2d=scored, metadata=meta)
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
    assert meta["layout_name"] == "h36m" and meta["layout_read"] == "h36m" and "conversion" not in meta
    assert len(det["S1"]["Directions"]) == 4
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


def test_frame_counts_that_differ_between_3d_and_2d(h36m_files, tmp_path):
    root, pos3d, pos2d, cameras = h36m_files
    short = copy.deepcopy(pos2d)
    short["S9"]["Eating"][2] = short["S9"]["Eating"][2][:9]  # one camera stops 3 frames before the 3D
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez(tmp_path / "short_2d.npz", positions_2d=short, metadata=meta)
    with pytest.raises(ValueError, match=r"short_2d\.npz: S9/Eating has \[13, 13, 9, 13\] 2D frames .* 12 3D frames"):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, data_2d=tmp_path / "short_2d.npz",
                        levels_from="none", out=tmp_path / "x.npz")
    bad = copy.deepcopy(pos3d)
    bad["S1"]["Directions"][3, 5] = np.nan
    np.savez(tmp_path / "nan_3d.npz", positions_3d=bad)
    with pytest.raises(ValueError, match=r"nan_3d\.npz: positions_3d\['S1'\]\['Directions'\] holds 3 NaN"):
        load_h36m_3d(tmp_path / "nan_3d.npz")


COCO_META = {"layout_name": "coco", "num_joints": 17,
             "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]}
H36M_META = {"layout_name": "h36m", "num_joints": 17,
             "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


def _as_coco(h36m):
    """COCO-ordered keypoints of H36M-17 ones: limbs and hips as they are, the nose on neck_nose, eyes and ears
    around it (2 and 6 px out, 4 px up)."""
    from skeletok.skeleton import COCO_17, H36M_17

    out = np.zeros_like(h36m)
    for name in COCO_17.joint_names:
        if name in H36M_17.joint_names:
            out[..., COCO_17.index(name), :] = h36m[..., H36M_17.index(name), :]
    nose = h36m[..., H36M_17.index("neck_nose"), :]
    out[..., 0, :] = nose
    for name, dx in (("left_eye", 2.0), ("right_eye", -2.0), ("left_ear", 6.0), ("right_ear", -6.0)):
        out[..., COCO_17.index(name), :] = nose + np.float32([dx, -4.0])
    return out


def test_coco_ordered_detections_are_converted_and_said(h36m_files, tmp_path, capsys):
    from skeletok.cli import main
    from skeletok.skeleton import H36M_17

    root, _, pos2d, cameras = h36m_files
    coco = {s: {a: [_as_coco(v) for v in views] for a, views in acts.items()} for s, acts in pos2d.items()}
    np.savez(tmp_path / "coco_2d.npz", positions_2d=coco, metadata=COCO_META)
    det, meta = load_h36m_2d(tmp_path / "coco_2d.npz")
    assert meta["layout_read"] == "coco" and "pelvis = mid-hips" in meta["conversion"]
    got, src = det["S9"]["Eating"][1], pos2d["S9"]["Eating"][1]
    limbs = [H36M_17.index(n) for n in H36M_17.joint_names if n.split("_")[-1] in
             ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
    np.testing.assert_array_equal(got[:, limbs], src[:, limbs])  # one to one
    np.testing.assert_allclose(got[:, 0], 0.5 * (src[:, 1] + src[:, 4]), atol=1e-4)  # pelvis = mid-hips
    np.testing.assert_allclose(got[:, 8], 0.5 * (src[:, 11] + src[:, 14]), atol=1e-4)  # thorax = mid-shoulders
    np.testing.assert_array_equal(got[:, 9], src[:, 9])  # neck_nose = nose
    # the command says what it did
    out = tmp_path / "coco.npz"
    assert main(["data", "from-h36m", str(root / "data_3d_h36m.npz"), "--cameras", str(cameras), "--data-2d",
                 str(tmp_path / "coco_2d.npz"), "--subjects", "S9", "--levels", "none", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "COCO-ordered keypoints converted to Human3.6M-17 order" in printed and "coco_2d.npz" in printed
    np.testing.assert_array_equal(load_dataset(out)["det_sparse"][:, 1, limbs], src[:12, limbs])


@pytest.mark.parametrize("meta, layout, message", [
    (None, "auto", r"bad_2d\.npz: has no 'metadata' .*--layout-2d h36m or --layout-2d coco"),
    ({**H36M_META, "keypoints_symmetry": COCO_META["keypoints_symmetry"]}, "auto",
     r"bad_2d\.npz: metadata contradicts itself: layout_name 'h36m' but keypoints_symmetry .* the coco layout's"),
    ({**H36M_META, "layout_name": "openpose"}, "auto", r"bad_2d\.npz: .*'openpose' is not a supported 2D layout"),
    ({**H36M_META, "num_joints": 25}, "auto", r"bad_2d\.npz: metadata says num_joints=25"),
    (H36M_META, "coco", r"bad_2d\.npz: metadata says the keypoints are in 'h36m' order, but layout 'coco'"),
])
def test_2d_layouts_that_cannot_be_read_are_refused(h36m_files, tmp_path, meta, layout, message):
    from skeletok.errors import KeypointFileError

    root, _, pos2d, cameras = h36m_files
    np.savez(tmp_path / "bad_2d.npz", positions_2d=pos2d, **({} if meta is None else {"metadata": meta}))
    with pytest.raises(KeypointFileError, match=message):
        h36m_to_dataset(root / "data_3d_h36m.npz", cameras=cameras, data_2d=tmp_path / "bad_2d.npz",
                        layout_2d=layout, levels_from="none", out=tmp_path / "x.npz")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), layout=st.sampled_from(["h36m", "coco"]), frames=st.integers(1, 6),
       with_symmetry=st.booleans())
def test_2d_reader_follows_the_metadata(tmp_path, seed, layout, frames, with_symmetry):
    from skeletok.skeleton import coco17_to_h36m17

    rng = np.random.default_rng(seed)
    views = [rng.uniform(0, 1000, size=(frames, 17, 2)).astype(np.float32) for _ in range(4)]
    meta = dict(COCO_META if layout == "coco" else H36M_META)
    if not with_symmetry:
        del meta["keypoints_symmetry"]
    path = tmp_path / f"{layout}_{seed}.npz"
    np.savez(path, positions_2d={"S1": {"Walking": views}}, metadata=meta)
    got, read = load_h36m_2d(path)
    assert read["layout_read"] == layout and ("conversion" in read) == (layout == "coco")
    for view, out in zip(views, got["S1"]["Walking"]):
        expect = coco17_to_h36m17(view)[0] if layout == "coco" else view
        np.testing.assert_array_equal(out, expect)


def test_2d_without_metadata_read_in_the_order_given(h36m_files, tmp_path):
    root, _, pos2d, _ = h36m_files
    coco = {s: {a: [_as_coco(v) for v in views] for a, views in acts.items()} for s, acts in pos2d.items()}
    np.savez(tmp_path / "plain_coco.npz", positions_2d=coco)
    as_coco, meta = load_h36m_2d(tmp_path / "plain_coco.npz", layout="coco")
    assert meta["layout_read"] == "coco"
    np.testing.assert_array_equal(as_coco["S1"]["Directions"][0][:, 2], pos2d["S1"]["Directions"][0][:, 2])
    np.savez(tmp_path / "plain_h36m.npz", positions_2d=pos2d)
    as_h36m, meta = load_h36m_2d(tmp_path / "plain_h36m.npz", layout="h36m")
    np.testing.assert_array_equal(as_h36m["S1"]["Directions"][3], pos2d["S1"]["Directions"][3])
    with pytest.raises(ValueError, match="layout must be"):
        load_h36m_2d(tmp_path / "plain_h36m.npz", layout="openpose")


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
