import numpy as np
import pytest
import torch

from skeletok.skeleton import COCO_17, H36M_17, Skeleton, coco17_to_h36m17


def test_h36m_order_and_tree():
    assert H36M_17.num_joints == 17
    assert H36M_17.num_parts == 16
    assert H36M_17.joint_names[0] == "pelvis"
    assert [H36M_17.index(n) for n in ("right_hip", "left_hip", "spine", "thorax", "head", "right_wrist")] == [
        1, 4, 7, 8, 10, 16,
    ]  # fmt: skip
    assert H36M_17.root == 0
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


def test_h36m_parts_breadth_first():
    assert H36M_17.parts == (
        (0, 1), (0, 4), (0, 7), (1, 2), (4, 5), (7, 8), (2, 3), (5, 6),
        (8, 9), (8, 11), (8, 14), (9, 10), (11, 12), (14, 15), (12, 13), (15, 16),
    )  # fmt: skip
    assert set(H36M_17.parts) == set(H36M_17.bones)
    assert H36M_17.part_names[0] == "pelvis-right_hip"
    assert H36M_17.part_names[-1] == "right_elbow-right_wrist"
    # every child appears exactly once as a part's child: one part per non-root joint
    assert sorted(c for _, c in H36M_17.parts) == list(range(1, 17))


def test_flip_pairs_mirror_names():
    for sk in (H36M_17, COCO_17):
        for a, b in sk.flip_pairs:
            assert sk.joint_names[a].startswith("left_")
            assert sk.joint_names[b] == "right_" + sk.joint_names[a][len("left_") :]
        perm = sk.flip_permutation
        assert sorted(perm) == list(range(sk.num_joints))
        assert tuple(perm[i] for i in perm) == tuple(range(sk.num_joints))  # an involution


def test_coco_tree():
    assert COCO_17.num_joints == 17 and COCO_17.num_parts == 16
    assert COCO_17.joint_names[0] == "nose" and COCO_17.joint_names[16] == "right_ankle"
    assert COCO_17.parents[COCO_17.index("left_hip")] == COCO_17.index("left_shoulder")


def test_explicit_parts_are_checked():
    sk = Skeleton("chain", ("a", "b", "c"), (-1, 0, 1), parts=((0, 1), (1, 2)))
    assert sk.parts == ((0, 1), (1, 2))
    with pytest.raises(ValueError, match="centre to periphery"):
        Skeleton("chain", ("a", "b", "c"), (-1, 0, 1), parts=((1, 2), (0, 1)))
    with pytest.raises(ValueError, match="every bone"):
        Skeleton("chain", ("a", "b", "c"), (-1, 0, 1), parts=((0, 1), (0, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(joint_names=("a", "b"), parents=(-1,)), "one entry per joint"),
        (dict(joint_names=("a", "b", "c"), parents=(-1, -1, 0)), "exactly one root"),
        (dict(joint_names=("a", "b", "c"), parents=(-1, 2, 1)), "cycle"),
        (dict(joint_names=("a", "b"), parents=(-1, 5)), r"parents\[1\]"),
        (dict(joint_names=("a", "a"), parents=(-1, 0)), "unique"),
        (dict(joint_names=("a", "b", "c"), parents=(-1, 0, 0), left=(1,), right=()), "same length"),
        (dict(joint_names=("a", "b", "c"), parents=(-1, 0, 0), left=(1,), right=(1,)), "distinct"),
    ],
)
def test_invalid_skeletons(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Skeleton(name="bad", **kwargs)


def test_index_unknown_name():
    with pytest.raises(ValueError, match="nose"):
        H36M_17.index("nose")


def test_frozen():
    with pytest.raises(Exception):
        H36M_17.name = "x"  # type: ignore[misc]


def _coco_pose():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 17, 2)), rng.uniform(0.1, 1.0, size=(3, 17))


def test_coco_to_h36m_values_numpy():
    kp, sc = _coco_pose()
    out, out_sc = coco17_to_h36m17(kp, sc)
    assert isinstance(out, np.ndarray) and out.shape == (3, 17, 2) and out_sc.shape == (3, 17)
    c, h = COCO_17.index, H36M_17.index
    pelvis = (kp[:, c("left_hip")] + kp[:, c("right_hip")]) / 2
    thorax = (kp[:, c("left_shoulder")] + kp[:, c("right_shoulder")]) / 2
    centre = kp[:, [c("left_eye"), c("right_eye"), c("left_ear"), c("right_ear")]].mean(1)
    np.testing.assert_allclose(out[:, h("pelvis")], pelvis)
    np.testing.assert_allclose(out[:, h("thorax")], thorax)
    np.testing.assert_allclose(out[:, h("spine")], (pelvis + thorax) / 2)
    np.testing.assert_allclose(out[:, h("neck_nose")], kp[:, c("nose")])
    np.testing.assert_allclose(out[:, h("head")], centre + 0.5 * (centre - thorax))
    for name in ("left_knee", "right_wrist", "right_hip", "left_ankle"):
        np.testing.assert_allclose(out[:, h(name)], kp[:, c(name)])
        np.testing.assert_allclose(out_sc[:, h(name)], sc[:, c(name)])
    np.testing.assert_allclose(out_sc[:, h("pelvis")], np.minimum(sc[:, c("left_hip")], sc[:, c("right_hip")]))
    np.testing.assert_allclose(out_sc[:, h("neck_nose")], sc[:, c("nose")])
    head_src = [c(n) for n in ("left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder")]
    np.testing.assert_allclose(out_sc[:, h("head")], sc[:, head_src].min(1))


def test_coco_to_h36m_torch_matches_numpy():
    kp, sc = _coco_pose()
    out_np, sc_np = coco17_to_h36m17(kp, sc)
    out_t, sc_t = coco17_to_h36m17(torch.from_numpy(kp).float(), torch.from_numpy(sc).float())
    assert out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-6)
    np.testing.assert_allclose(sc_t.numpy(), sc_np, atol=1e-6)
    out3, none = coco17_to_h36m17(torch.randn(2, 5, 17, 3))
    assert out3.shape == (2, 5, 17, 3) and none is None


def test_coco_to_h36m_bad_inputs():
    with pytest.raises(ValueError, match="keypoints"):
        coco17_to_h36m17(np.zeros((3, 16, 2)))
    with pytest.raises(ValueError, match="keypoints"):
        coco17_to_h36m17([[0.0, 0.0]] * 17)
    with pytest.raises(ValueError, match="scores"):
        coco17_to_h36m17(np.zeros((3, 17, 2)), np.zeros((3, 16)))
    with pytest.raises(ValueError, match="scores"):
        coco17_to_h36m17(np.zeros((3, 17, 2)), torch.zeros(3, 17))
