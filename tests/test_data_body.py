"""BodyModel: the committed asset, forward kinematics and linear blend skinning."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from skeletok.data.body.model import BodyModel, local_to_global

CMU_NAMES = ("Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LowerBack", "Spine", "Spine1",
             "Neck", "Neck1", "Head", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightFoot")


@pytest.fixture(scope="module")
def body():
    return BodyModel.load()


def identity(t, k):
    return np.broadcast_to(np.eye(3), (t, k, 3, 3)).copy()


def test_asset_contents(body):
    assert body.num_vertices == 6591 and body.num_joints == 31 and body.num_shapes >= 4
    assert body.faces.shape == (13178, 3) and body.faces.dtype == np.int32
    assert set(CMU_NAMES) <= set(body.joint_names) and body.joint_names[0] == "Hips"
    assert body.parents[0] == -1 and np.all(body.parents[1:] < np.arange(1, 31)) and np.all(body.parents[1:] >= 0)
    assert np.allclose(body.skin_weight.sum(axis=1), 1.0, atol=1e-5) and body.skin_weight.min() >= 0
    assert np.allclose(body.skin_matrix.sum(axis=1), 1.0, atol=1e-5)
    # grounded, root above the origin, realistic adult heights, all shapes different
    assert np.allclose(body.vertices[..., 2].min(axis=1), 0.0, atol=1e-6)
    assert np.allclose(body.rest_joints[:, 0, :2], 0.0, atol=1e-6)
    heights = body.vertices[..., 2].max(axis=1)
    assert heights.min() > 1.4 and heights.max() < 2.0 and np.ptp(heights) > 0.2
    assert len(set(body.shape_names)) == body.num_shapes
    # left side at +x, facing -y (toes in front of the ankles)
    left, right = body.joint_index("LeftUpLeg"), body.joint_index("RightUpLeg")
    assert np.all(body.rest_joints[:, left, 0] > 0.05) and np.all(body.rest_joints[:, right, 0] < -0.05)
    foot, toe = body.joint_index("LeftFoot"), body.joint_index("LeftToeBase")
    assert np.all(body.rest_joints[:, toe, 1] < body.rest_joints[:, foot, 1])


def test_mesh_is_one_connected_component(body):
    f = body.faces.astype(np.int64)
    graph = coo_matrix((np.ones(f.size), (f.reshape(-1), f[:, [1, 2, 0]].reshape(-1))), shape=(6591, 6591))
    count, _ = connected_components(graph, directed=False)
    assert count == 1
    assert len(np.unique(f)) == body.num_vertices


@pytest.mark.parametrize("shape", [0, 1, 3])
def test_rest_pose_is_the_template(body, shape):
    vertices, joints = body.pose(identity(3, 31), np.zeros((3, 3)), shape=shape)
    assert vertices.shape == (3, 6591, 3) and joints.shape == (3, 31, 3)
    np.testing.assert_allclose(vertices, np.broadcast_to(body.vertices[shape], vertices.shape), atol=1e-6)
    np.testing.assert_allclose(joints, np.broadcast_to(body.rest_joints[shape], joints.shape), atol=1e-7)
    rest_v, rest_j = body.rest_pose(shape)
    np.testing.assert_array_equal(rest_v, body.vertices[shape])
    np.testing.assert_array_equal(rest_j, body.rest_joints[shape])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.integers(0, 3))
def test_rigid_pose_moves_the_template_rigidly(body, seed, shape):
    rng = np.random.default_rng(seed)
    q = Rotation.random(2, random_state=seed).as_matrix()
    trans = rng.normal(size=(2, 3))
    rot = np.repeat(q[:, None], 31, axis=1)
    vertices, joints = body.pose(rot, trans, shape=shape)
    root = body.rest_joints[shape, 0]
    want_v = np.einsum("tab,vb->tva", q, body.vertices[shape] - root) + root + trans[:, None]
    want_j = np.einsum("tab,kb->tka", q, body.rest_joints[shape] - root) + root + trans[:, None]
    np.testing.assert_allclose(vertices, want_v, atol=2e-5)
    np.testing.assert_allclose(joints, want_j, atol=1e-5)


def test_local_rotation_moves_only_the_subtree(body):
    elbow = body.joint_index("LeftForeArm")
    local = identity(1, 31)
    local[0, elbow] = Rotation.from_rotvec([0.0, 1.2, 0.0]).as_matrix()
    glob = body.local_to_global(local)
    np.testing.assert_allclose(glob, local_to_global(local, body.parents))
    vertices, joints = body.pose(glob, shape=0)
    subtree = {elbow}
    for j, p in enumerate(body.parents):
        if p in subtree:
            subtree.add(j)
    rest = body.rest_joints[0]
    for j in range(31):
        want = rest[j] if j not in subtree else rest[elbow] + local[0, elbow] @ (rest[j] - rest[elbow])
        np.testing.assert_allclose(joints[0, j], want, atol=1e-5)
    # vertices skinned only to bones outside the subtree stay put; vertices fully on the forearm turn rigidly
    in_subtree = np.isin(body.skin_index, list(subtree)) & (body.skin_weight > 0)
    still = ~in_subtree.any(axis=1)
    np.testing.assert_allclose(vertices[0, still], body.vertices[0, still], atol=1e-6)
    # (every bone of the subtree turns alike, so a vertex whose weights all lie in the subtree moves rigidly)
    rigid = (body.skin_index[:, 0] == elbow) & ((in_subtree * body.skin_weight).sum(axis=1) > 0.9999)
    assert rigid.sum() > 20
    want = (body.vertices[0, rigid] - rest[elbow]) @ local[0, elbow].T + rest[elbow]
    np.testing.assert_allclose(vertices[0, rigid], want, atol=1e-5)
    assert np.abs(vertices[0, rigid] - body.vertices[0, rigid]).max() > 0.05


def test_local_to_global_composes_down_the_chain():
    parents = np.array([-1, 0, 1])
    a, b, c = (Rotation.from_rotvec(v).as_matrix() for v in ([0.3, 0, 0], [0, 0.5, 0], [0, 0, 0.7]))
    glob = local_to_global(np.stack([a, b, c])[None], parents)
    np.testing.assert_allclose(glob[0], np.stack([a, a @ b, a @ b @ c]), atol=1e-12)


def test_bad_inputs_raise(body, tmp_path):
    good = identity(2, 31)
    with pytest.raises(ValueError, match="global_rotations"):
        body.pose(identity(2, 30))
    with pytest.raises(ValueError, match="rotation matrices"):
        body.pose(good * 2.0)
    with pytest.raises(ValueError, match="finite"):
        bad = good.copy()
        bad[0, 0, 0, 0] = np.nan
        body.pose(bad)
    with pytest.raises(ValueError, match="root_translation"):
        body.pose(good, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        body.pose(good, shape=body.num_shapes)
    with pytest.raises(ValueError, match="shape"):
        body.rest_pose(-1)
    with pytest.raises(ValueError, match="joint name"):
        body.joint_index("Tail")
    with pytest.raises(ValueError, match="parents"):
        local_to_global(identity(1, 2), [1, -1])
    path = tmp_path / "broken.npz"
    np.savez(path, vertices=body.vertices, faces=body.faces)
    with pytest.raises(ValueError, match="broken.npz.*joint_names"):
        BodyModel.load(path)


def _descendants(body, name):
    out = [body.joint_index(name)]
    for k in range(body.num_joints):
        if body.parents[k] in out:
            out.append(k)
    return out


def _wide_legs(body, degrees):
    """Both thighs (and everything below them) turned outwards by ``degrees`` about the forward axis."""
    rot = identity(1, body.num_joints)
    for name, sign in (("LeftUpLeg", -1.0), ("RightUpLeg", 1.0)):  # about -y the left leg (-z) swings to +x
        rot[0, _descendants(body, name)] = Rotation.from_euler("y", sign * degrees, degrees=True).as_matrix()
    return rot


def test_wide_leg_pose_does_not_tear_the_crotch(body):
    """With the rig's own weights a 45 degree straddle stretched crotch edges 57x (65x over the default data);
    the smoothed weights keep every edge within 4x of its rest length on every shape."""
    from skeletok.data.body.skinning import edge_stretch, mesh_edges

    edges = mesh_edges(body.faces)
    rot = _wide_legs(body, 45.0)
    for shape in range(body.num_shapes):
        vertices, joints = body.pose(rot, None, shape)
        ankle = joints[0, body.joint_index("LeftFoot")]
        assert ankle[0] > body.rest_joints[shape, body.joint_index("LeftFoot"), 0] + 0.3  # the leg really went out
        stretch = edge_stretch(body.vertices[shape], vertices[0], edges)
        assert stretch.max() < 4.0, (shape, stretch.max())
    # arms raised high: the armpits stay within 4x too
    rot = identity(1, body.num_joints)
    for name, sign in (("LeftArm", -1.0), ("RightArm", 1.0)):
        rot[0, _descendants(body, name)] = Rotation.from_euler("y", sign * 120.0, degrees=True).as_matrix()
    for shape in range(body.num_shapes):
        assert edge_stretch(body.vertices[shape], body.pose(rot, None, shape)[0][0], edges).max() < 4.0


def test_smooth_skin_weights():
    from skeletok.data.body.skinning import mesh_edges, smooth_skin_weights

    # a strip of 10 vertices along x (0.01 m apart) whose weights jump from joint 0 to joint 1 at x = 0.045,
    # plus a separate triangle far away that only joint 2 moves
    x = np.array([[0.01 * i, 0.01 * (i % 2), 0.0] for i in range(10)] + [[0.0, 1.0, 0.0], [0.01, 1.0, 0.0],
                                                                          [0.0, 1.01, 0.0]])
    faces = np.array([[i, i + 1, i + 2] for i in range(8)] + [[10, 11, 12]])
    index = np.array([[0, 1]] * 5 + [[1, 0]] * 5 + [[2, 0]] * 3)
    weight = np.array([[1.0, 0.0]] * 10 + [[1.0, 0.0]] * 3)
    assert mesh_edges(faces).shape == (17 + 3, 2)
    new_index, new_weight = smooth_skin_weights(x, faces, index, weight, 3, sigma=0.02, influences=2)
    assert new_index.dtype == np.int16 and new_weight.dtype == np.float32
    np.testing.assert_allclose(new_weight.sum(1), 1.0, atol=1e-6)
    dense = np.zeros((13, 3))
    np.add.at(dense, (np.arange(13)[:, None], new_index.astype(int)), new_weight)
    assert (np.diff(dense[:10, 1]) >= -1e-9).all() and 0.05 < dense[4, 1] < 0.5 < dense[5, 1] < 0.95  # a ramp
    np.testing.assert_allclose(dense[10:, 2], 1.0)  # nothing leaks between unconnected parts
    with pytest.raises(ValueError, match="sigma"):
        smooth_skin_weights(x, faces, index, weight, 3, sigma=0.0)
    with pytest.raises(ValueError, match="joint indices"):
        smooth_skin_weights(x, faces, index, weight, 2)


def test_committed_weights_are_smoothed(body):
    from skeletok.data.body.assets import default_asset_path
    from skeletok.data.body.skinning import SMOOTH_SIGMA, mesh_edges

    with np.load(default_asset_path()) as data:
        assert float(data["skin_smooth_sigma"]) == SMOOTH_SIGMA
    # the weights change slowly along the surface: at most 60 (summed over bones) per metre along any edge; the
    # rig's own weights jumped by 447 per metre (a midline crotch vertex split half-and-half 2 mm from a one-thigh one)
    w = body.skin_matrix
    edges = mesh_edges(body.faces)
    length = np.linalg.norm(body.vertices[0, edges[:, 0]] - body.vertices[0, edges[:, 1]], axis=1)
    gradient = np.abs(w[edges[:, 0]] - w[edges[:, 1]]).sum(axis=1) / length
    assert gradient.max() < 60.0
