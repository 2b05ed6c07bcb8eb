"""Human3.6M-format test files generated from the shipped real mocap (the published formats, synthetic calibration):
shared fixtures of the Human3.6M tests (import the fixtures into a test module to use them)."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skeletok.data.sets.h36m import CAMERA_IDS, H36M_32_NAMES, H36M_32_TO_17, h36m_cameras
from skeletok.data.views.cameras import look_at
from tests.h36m_detections import detector_like_2d

ACTIONS = {"S1": {"Walking 1": 14, "Directions": 11}, "S9": {"Eating": 12}}
SCORED_2D = "data_2d_h36m_scored.npz"  # the fixture's scored detections, (t, 17, 3) with misses
BLANK_FRAMES = {("S1", "Walking 1", 0): (5,), ("S9", "Eating", 1): (3,)}  # (subject, action, camera): nobody found
CALIBRATED = ("S1", "S5", "S9", "S11")
# Camera 0's intrinsics: round made-up numbers, so projections can be checked by hand.
CAM0 = dict(focal=(1146.0, 1144.0), centre=(510.0, 505.0), radial=(-0.2, 0.24, -0.003), tangential=(-0.001, 0.002))

COCO_META = {"layout_name": "coco", "num_joints": 17,
             "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]}
H36M_META = {"layout_name": "h36m", "num_joints": 17,
             "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


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
