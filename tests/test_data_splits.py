"""Splits by take with near-duplicate groups, and the training variants of a take (mirror, shapes, sizes)."""

import numpy as np
import pytest

from skeletok.data.sets.build import build_dataset
from skeletok.data.sets.splits import frames_per_split
from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset
from skeletok.data.motion import Motion
from skeletok.data.sets.splits import heading_free, mirror_joints, near_duplicate_groups, split_takes, take_distance
from skeletok.data.motion.variants import evenly_spaced, mirror_motion, mirror_name, mirror_permutation
from skeletok.skeleton import H36M_17


def _walk(seed: int, frames: int = 40, swing: float = 0.5) -> np.ndarray:
    """A Human3.6M-17 pose sequence: a standing body whose left arm and right leg swing (metres)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.3, size=(17, 3))
    base[0] = 0
    base[H36M_17.index("right_hip")] = [0.15, 0, 0]
    base[H36M_17.index("left_hip")] = [-0.15, 0, 0]
    t = np.linspace(0, 2 * np.pi, frames)[:, None]
    poses = np.repeat(base[None], frames, 0)
    poses[:, H36M_17.index("left_wrist"), 1] += swing * np.sin(t[:, 0])
    poses[:, H36M_17.index("right_ankle"), 1] += swing * np.cos(t[:, 0])
    return poses


@pytest.mark.parametrize("name,twin", [("LeftArm", "RightArm"), ("LHipJoint", "RHipJoint"), ("thigh.L", "thigh.R"),
                                       ("Bip01 L Thigh", "Bip01 R Thigh"), ("l_hip", "r_hip"),
                                       ("DEF-thigh.L", "DEF-thigh.R"), ("mixamorig:LeftUpLeg", "mixamorig:RightUpLeg"),
                                       ("UpperArm_L", "UpperArm_R"), ("LowerBack", "LowerBack"), ("Hips", "Hips")])
def test_mirror_name(name, twin):
    names = [name, twin, "Hips", "LowerBack"]
    assert mirror_name(name, names) == twin
    assert mirror_name(twin, names) == name


def test_mirror_motion_swaps_sides_and_is_an_involution():
    names = ["Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftArm", "RightArm"]
    parents = np.array([-1, 0, 0, 0, 3, 3])
    pos = np.random.default_rng(0).normal(size=(5, 6, 3)).astype(np.float32)
    m = Motion("take", names, parents, pos, 30.0, "walk")
    mirrored = mirror_motion(m)
    assert mirrored.name == "take~mirror" and mirrored.action == "walk"
    np.testing.assert_allclose(mirrored.positions[:, 4], pos[:, 5] * [-1, 1, 1])  # left arm = mirrored right arm
    np.testing.assert_allclose(mirrored.positions[:, 0], pos[:, 0] * [-1, 1, 1])  # mid-line joint reflected
    np.testing.assert_allclose(mirror_motion(mirrored).positions, pos)
    assert mirror_permutation(names).tolist() == [0, 2, 1, 3, 5, 4]
    with pytest.raises(ValueError, match="no left/right joint pairs"):
        mirror_motion(Motion("x", ["a", "b"], np.array([-1, 0]), pos[:, :2], 30.0))


def test_evenly_spaced_covers_the_whole_take():
    pos = np.arange(100, dtype=np.float32)[:, None, None].repeat(3, -1)
    m = Motion("t", ["root"], np.array([-1]), pos, 50.0)
    kept = evenly_spaced(m, 10).positions[:, 0, 0]
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 99
    assert np.all(np.diff(kept) >= 10) and np.all(np.diff(kept) <= 12)
    assert evenly_spaced(m, None) is m and evenly_spaced(m, 200) is m


def test_take_distance_near_duplicates_and_mirrors():
    a = _walk(0)
    rng = np.random.default_rng(1)
    copy = a + rng.normal(scale=0.01, size=a.shape)
    other = _walk(5, swing=1.5)
    assert take_distance(a, copy) < 0.03
    assert take_distance(a, other) > 0.1
    mirrored = mirror_joints(a)
    assert take_distance(a, mirrored, mirror=True) < 1e-6
    assert take_distance(a, mirrored, mirror=False) > 0.05
    # heading does not matter: the take turned by 90 degrees about +z is the same take
    turn = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(heading_free(a @ turn.T), heading_free(a), atol=1e-9)
    groups = near_duplicate_groups([a, other, copy, mirrored], threshold_m=0.06)
    assert groups.tolist() == [0, 1, 0, 0]
    assert near_duplicate_groups([a, other, copy, mirrored], threshold_m=0.06, mirror=False).tolist() == [0, 1, 0, 2]


def test_split_takes_keeps_groups_whole():
    names = ["a", "a_copy", "b", "c", "d", "e"]
    frames = [100, 100, 50, 50, 50, 50]
    groups = np.array([0, 0, 1, 2, 3, 4])
    split = split_takes(names, frames, groups=groups, test=["a"], val=["c"])
    assert split.tolist() == [1, 1, 0, 2, 0, 0]
    for seed in range(20):
        drawn = split_takes(names, frames, groups=groups, test_fraction=0.3, val_fraction=0.2, seed=seed)
        assert drawn[0] == drawn[1]  # a group never cut
        assert (drawn == SPLIT_CODES["train"]).any()
        assert (drawn == SPLIT_CODES["test"]).any() and (drawn == SPLIT_CODES["val"]).any()
    with pytest.raises(ValueError, match="near duplicates of takes already in another split"):
        split_takes(names, frames, groups=groups, test=["a"], val=["a_copy"])
    with pytest.raises(ValueError, match="not among the takes"):
        split_takes(names, frames, test=["zzz"])
    with pytest.raises(ValueError, match="nothing to train on"):
        split_takes(names[:2], frames[:2], groups=groups[:2], test=["a"])


def test_build_variants_splits_and_frames(tmp_path):
    from skeletok.data.body.model import BodyModel

    body = BodyModel.load()
    rest = body.rest_joints[0].astype(np.float64)
    names = list(body.joint_names)
    arm = [i for i, n in enumerate(names) if n.startswith("RightForeArm") or n.startswith("RightHand")]
    elbow = rest[names.index("RightForeArm")]
    motions = []
    for k, name in enumerate(["wave_01", "wave_02", "spin_01"]):
        pos = []
        for t in range(10):
            p = rest.copy()
            c, s = np.cos(0.15 * t * (k + 1)), np.sin(0.15 * t * (k + 1))
            p[arm] = (p[arm] - elbow) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + elbow
            pos.append(p + [0.1 * t * k, 0, 0])
        motions.append(Motion(name, names, body.parents, np.array(pos), 30.0))
    out = build_dataset(motions, body=body, out=tmp_path / "v.npz", test_sequences=["spin_01"],
                        near_duplicate_m=None, mirror=True, shapes_per_take=2, scale_range=(0.9, 1.1), fps=30.0,
                        progress=False)
    d = load_dataset(out)
    takes = d["sequence_take"]
    assert sorted(set(takes)) == ["spin_01", "wave_01", "wave_02"]
    assert (takes == "wave_01").sum() == 4 and (takes == "spin_01").sum() == 1  # train: 2 shapes x mirror
    split_of = {str(t): set(d["split"][d["sequence"] == s].tolist()) for s, t in enumerate(takes)}
    assert split_of["spin_01"] == {1} and split_of["wave_01"] == {0}
    wave = np.flatnonzero(takes == "wave_01")
    assert len(set(d["sequence_shape"][wave].tolist())) == 4  # every variant on its own body shape
    # the mirrored variant moves the *left* forearm where the source moved the right one
    mirrored = [s for s in wave if "mirror" in str(d["sequence_names"][s])]
    plain = wave[0]
    rwrist, lwrist = H36M_17.index("right_wrist"), H36M_17.index("left_wrist")
    spread = {s: np.ptp(d["world_sparse"][d["sequence"] == s], axis=0) for s in [plain, *mirrored]}
    assert spread[plain][rwrist].max() > 3 * spread[plain][lwrist].max()
    for s in mirrored:
        assert spread[s][lwrist].max() > 3 * spread[s][rwrist].max()
    counts = frames_per_split(d)
    assert counts["all"]["train"] == 2 * 4 * 10 and counts["all"]["test"] == 10 and counts["all"]["val"] == 0
    assert sum(counts["all"].values()) == len(d["split"])
