import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from skeletok.data.sets.actions import action_from_name, assign_actions, pseudo_labels
from skeletok.data.body.model import BodyModel
from skeletok.data.sets.build import RIG_TARGET, build_dataset, split_by_sequence
from skeletok.data.views.cameras import cameras_from_arrays, normalize_screen
from skeletok.data.sets.dataset import HierarchicalPoseDataset
from skeletok.data.sets.fileformat import load_dataset, save_dataset
from skeletok.data.body.levels import build_levels
from skeletok.data.motion import Motion
from skeletok.data.views.occlusion import Occlusion


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def synthetic_motions(body, frames=12):
    """Rig-named motions: the rest pose turning, walking forward and swinging the left forearm."""
    rest = body.rest_joints[0].astype(np.float64)
    names = list(body.joint_names)
    arm = [i for i, n in enumerate(names) if n.startswith("LeftForeArm") or n.startswith("LeftHand")]
    elbow = rest[names.index("LeftForeArm")]
    motions = []
    for k, name in enumerate(["walk_01", "jump_02", "kick_03", "run_04"]):
        pos = []
        for t in range(frames):
            p = rest.copy()
            p[arm] = (p[arm] - elbow) @ _rot_z(0.1 * t * (k + 1)).T + elbow
            p = p @ _rot_z(0.2 * t + k).T + np.array([0.05 * t, 3.0 * k, 0.0])
            pos.append(p)
        motions.append(Motion(name, names, body.parents, np.array(pos), 30.0))
    return motions


@pytest.fixture(scope="session")
def body():
    return BodyModel.load()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, body):
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    out = tmp_path_factory.mktemp("data") / "tiny.npz"
    return build_dataset(synthetic_motions(body), body=body, levels=levels, out=out, test_sequences=["kick_03"],
                         near_duplicate_m=None,
                         progress=False)


def test_file_contents(tiny):
    d = load_dataset(tiny)
    n = len(d["world_sparse"])
    assert n == 4 * 10  # 12 frames (0.367 s) at 30 fps resampled to 25 fps: 10 frames
    assert d["pix_sparse"].shape == (n, 4, 17, 2) and d["pix_fine"].dtype == np.float32
    assert list(d["sequence_names"]) == ["walk_01", "jump_02", "kick_03", "run_04"]
    assert sorted(d["action_names"]) == ["jump", "kick", "run", "walk"]
    assert [d["action_names"][a] for a in d["action"][::10]] == ["walk", "jump", "kick", "run"]
    # every sequence shifted horizontally above the rig target, heights kept; shapes vary across sequences
    for s in range(4):
        np.testing.assert_allclose(d["world_sparse"][d["sequence"] == s, 0, :2].mean(0), RIG_TARGET[:2], atol=1e-5)
    assert np.abs(d["sequence_offset"][:, 2]).max() < 0.1 and np.abs(d["sequence_offset"][:, 1]).max() > 5
    for s in range(4):  # grounded on the lowest mesh vertex, so the surface points stay just above the floor
        assert 0.0 <= d["world_fine"][d["sequence"] == s][..., 2].min() < 0.1
    assert len(set(d["sequence_shape"].tolist())) == 4
    np.testing.assert_array_equal(d["fine_to_dense"], np.arange(96) // 2)
    assert set(d["parts_fine"]) <= set(range(16)) and len(set(d["parts_dense"])) > 8
    # fine points nest into dense points: each dense point is the (weighted) mean of two fine ones
    assert np.all(np.isfinite(d["world_dense"]))


def test_no_vertex_below_the_floor_in_a_tiny_build(tmp_path, body):
    """Grounding is on the lowest mesh vertex: the rebuilt mesh never sinks into the floor (it did by 1-8 cm when
    grounding used the cluster means), and each sequence touches it."""
    from skeletok.data.motion.assets import load_motion_assets
    from skeletok.data.motion.retarget import retarget
    from skeletok.data.motion.variants import evenly_spaced
    from skeletok.data.sets.build import DEFAULT_FPS, _resolve_mapping

    wanted = ["deepmimic/getup_facedown", "deepmimic/crawl", "holosoma/mocap_climb_seq_0", "bvhtoolbox/test_freebvh"]
    motions = [m for m in load_motion_assets() if m.name in wanted]
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    out = build_dataset(motions, body=body, levels=levels, out=tmp_path / "floor.npz", max_frames=40,
                        test_sequences=[wanted[1]], near_duplicate_m=None, placement="fixed", progress=False)
    d = load_dataset(out)
    assert list(d["sequence_names"]) == [m.name for m in motions]
    for s, motion in enumerate(motions):
        motion = evenly_spaced(motion.resample(DEFAULT_FPS), 40)
        posed = retarget(motion, body, mapping=_resolve_mapping(str(d["sequence_mapping"][s]), motion),
                         shape=int(d["sequence_shape"][s]))
        z = posed.vertices[..., 2] + d["sequence_offset"][s, 2]
        assert z.min(axis=1).min() >= -1e-3, motion.name  # no vertex below the floor in any frame
        assert z.min() <= 1e-3, motion.name  # and the sequence touches it
        assert d["world_fine"][d["sequence"] == s][..., 2].min() > 0.0, motion.name


def test_split_is_by_sequence(tiny):
    train, test = (HierarchicalPoseDataset(tiny, split=s) for s in ("train", "test"))
    train_seq = {int(train[i]["sequence"]) for i in range(len(train))}
    test_seq = {int(test[i]["sequence"]) for i in range(len(test))}
    assert test_seq == {2} and train_seq == {0, 1, 3}
    assert len(train) + len(test) == len(HierarchicalPoseDataset(tiny, split="all")) == 40 * 4
    split = split_by_sequence(["a", "b", "c", "d", "e"], [100, 100, 100, 100, 100], test_fraction=0.2, seed=1)
    assert split.sum() == 1
    assert split_by_sequence(["a"], [10]).sum() == 0
    assert split_by_sequence(["a", "b"], [10, 10], test_fraction=0.9).sum() == 1  # keeps a train sequence


def test_items_keys_dtypes_and_values(tiny):
    d = load_dataset(tiny)
    ds = HierarchicalPoseDataset(tiny, split="all")
    cams = cameras_from_arrays(d)
    for index in (0, 5, 77, len(ds) - 1):
        item = ds[index]
        assert set(item) == {"sparse_2d", "dense_2d", "fine_2d", "sparse_visible", "sparse_2d_clean", "sparse_3d",
                             "dense_visible", "fine_visible", "action", "sequence", "camera", "frame"}
        assert item["sparse_2d"].shape == (17, 2) and item["sparse_2d"].dtype == torch.float32
        assert item["dense_2d"].shape == (48, 2) and item["fine_2d"].shape == (96, 2)
        assert item["sparse_visible"].dtype == torch.bool and item["sparse_visible"].all()
        assert item["dense_visible"].all() and item["fine_visible"].all()
        assert item["action"].dtype == torch.int64 and item["frame"].ndim == 0
        f, c = int(item["frame"]), int(item["camera"])
        assert (f, c) == divmod(index, 4)
        cam = cams[c]
        w, h = cam.size
        for level in ("sparse", "dense", "fine"):
            expected = normalize_screen(cam.project(d[f"world_{level}"][f]), w, h)
            np.testing.assert_allclose(item[f"{level}_2d" if level != "sparse" else "sparse_2d_clean"], expected,
                                       atol=1e-4)
        torch.testing.assert_close(item["sparse_2d"], item["sparse_2d_clean"])
        assert torch.all(item["sparse_3d"][0] == 0)
        X = cam.to_camera(d["world_sparse"][f])
        np.testing.assert_allclose(item["sparse_3d"], X - X[0], atol=1e-5)
        assert 3.0 < X[0, 2] < 7.0  # subject 4.5-5.5 m in front of the camera
        # the subject is inside the image
        assert (item["sparse_2d"][:, 0].abs() < 1).all()


def test_camera_subset(tiny):
    ds = HierarchicalPoseDataset(tiny, split="test", cameras=[1, 3])
    assert len(ds) == 10 * 2
    assert [int(ds[i]["camera"]) for i in range(4)] == [1, 3, 1, 3]
    assert ds.num_cameras == 2 and ds.num_actions == 4


def test_occlusion_is_reproducible_per_index_and_epoch(tiny):
    occ = Occlusion(mask_ratio=0.4, noise_px=4.0)
    ds = HierarchicalPoseDataset(tiny, occlusion=occ, seed=7)
    a, b = ds[3], ds[3]
    torch.testing.assert_close(a["sparse_2d"], b["sparse_2d"])
    assert torch.equal(a["sparse_visible"], b["sparse_visible"])
    assert int((~a["sparse_visible"]).sum()) == 7
    assert not torch.allclose(a["sparse_2d"], a["sparse_2d_clean"])
    # hidden joints keep their (noisy) coordinates: not zero-filled
    assert (a["sparse_2d"][~a["sparse_visible"]].abs() > 1e-4).any()
    ds.set_epoch(1)
    c = ds[3]
    assert not torch.allclose(a["sparse_2d"], c["sparse_2d"])
    ds.set_epoch(0)
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    direct = torch.stack([ds[i]["sparse_2d"] for i in range(8)])
    torch.testing.assert_close(batch["sparse_2d"], direct)
    assert batch["sparse_visible"].shape == (8, 17)


def test_load_errors(tiny, tmp_path):
    d = load_dataset(tiny)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "none.npz")
    broken = dict(d)
    del broken["cam_sparse"]
    np.savez(tmp_path / "a.npz", **broken)
    with pytest.raises(ValueError, match=r"a\.npz.*missing key.*cam_sparse"):
        load_dataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", **{**d, "format_version": np.array(2)})
    with pytest.raises(ValueError, match=r"b\.npz.*'format_version' is 2"):
        load_dataset(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", **{**d, "pix_dense": d["pix_dense"][:, :, :40]})
    with pytest.raises(ValueError, match=r"c\.npz.*'pix_dense'"):
        load_dataset(tmp_path / "c.npz")
    split = d["split"].copy()
    split[0] = 1 - split[0]
    with pytest.raises(ValueError, match="split must be by sequence"):
        save_dataset({**d, "split": split}, tmp_path / "d.npz")
    with pytest.raises(ValueError, match="'action'"):
        save_dataset({**d, "action": d["action"] + 10}, tmp_path / "e.npz")
    with pytest.raises(ValueError, match="split must be one of"):
        HierarchicalPoseDataset(tiny, split="validation")
    with pytest.raises(ValueError, match=r"split 'val' .* holds no frames; it has \['train', 'test'\].*split 'all'"):
        HierarchicalPoseDataset(tiny, split="val")
    with pytest.raises(ValueError, match="cameras must be indices"):
        HierarchicalPoseDataset(tiny, cameras=[4])
    with pytest.raises(ValueError, match="det_sparse"):
        HierarchicalPoseDataset(tiny, use_detections=True)


def test_action_names_from_sources():
    assert action_from_name("humanoid3d_backflip") == "backflip"
    assert action_from_name("deepmimic/humanoid3d_walk.txt") == "walk"
    assert action_from_name("holosoma/climbing_03.npz") == "climb"
    assert action_from_name("Walking 1") == "walk"
    assert action_from_name("S1_take2_dance") == "dance"
    with pytest.raises(ValueError, match="no action word"):
        action_from_name("01_02.bvh")


def test_pseudo_labels_cluster_poses():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 17, 3))
    poses = np.concatenate([b + 0.01 * rng.normal(size=(30, 17, 3)) for b in base])
    # the same pose families turned about z and shifted must cluster the same way
    turned = poses @ _rot_z(1.0).T + np.array([4.0, 1.0, 0.0])
    a, b = pseudo_labels(poses, 3, seed=0), pseudo_labels(turned, 3, seed=0)
    assert sorted(np.bincount(a).tolist()) == [30, 30, 30]
    for block in range(3):
        assert len(set(a[block * 30:(block + 1) * 30])) == 1
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, pseudo_labels(poses, 3, seed=0))


def test_assign_actions_uses_pseudo_labels_when_uninformative():
    rng = np.random.default_rng(1)
    poses = rng.normal(size=(40, 17, 3))
    seq = np.repeat([0, 1], 20)
    action, names = assign_actions(["walk", "run"], seq, poses)
    assert names == ["run", "walk"] and (action[:20] == 1).all() and (action[20:] == 0).all()
    action, names = assign_actions(["climb", "climb"], seq, poses, k=4)
    assert all(n.startswith("cluster") for n in names) and len(names) == 4
    action, names = assign_actions(["walk", None], seq, poses, k=3)
    assert names[0] == "walk" and (action[:20] == 0).all() and set(action[20:]) <= {1, 2, 3}


def test_default_paths(monkeypatch, tmp_path):
    from skeletok.data.sets.paths import default_dataset_path

    monkeypatch.delenv("SKELETOK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_dataset_path() == tmp_path / "skeletok" / "default-v3.npz"
    assert default_dataset_path(50) == tmp_path / "skeletok" / "default-v3-max50.npz"
    assert default_dataset_path(50, "s1") == tmp_path / "skeletok" / "default-v3-s1-max50.npz"
    monkeypatch.setenv("SKELETOK_DATA", str(tmp_path / "here.npz"))
    assert default_dataset_path() == tmp_path / "here.npz"
    monkeypatch.setenv("SKELETOK_DATA", str(tmp_path / "folder"))
    assert default_dataset_path() == tmp_path / "folder" / "default-v3.npz"


def test_random_views(tiny):
    d = load_dataset(tiny)
    ds = HierarchicalPoseDataset(tiny, split="all", random_views=True, seed=3)
    a, b = ds[10], ds[10]
    torch.testing.assert_close(a["sparse_2d"], b["sparse_2d"])
    assert int(a["camera"]) == -1 and a["dense_visible"].all()
    f = int(a["frame"])
    fixed = HierarchicalPoseDataset(tiny, split="all")[10]
    assert not torch.allclose(a["sparse_2d"], fixed["sparse_2d"])  # a new viewpoint
    # same body, other camera: camera-frame bone lengths agree with the file's
    bones = [(p, c) for p, c in [(0, 1), (1, 2), (2, 3), (8, 11), (11, 12)]]
    for p, c in bones:
        assert torch.linalg.norm(a["sparse_3d"][c] - a["sparse_3d"][p]) == pytest.approx(
            float(np.linalg.norm(d["world_sparse"][f, c] - d["world_sparse"][f, p])), abs=1e-5)
    assert torch.all(a["sparse_3d"][0] == 0) and (a["sparse_2d"].abs() < 1).all()
    ds.set_epoch(1)
    torch.testing.assert_close(ds[10]["sparse_2d"], a["sparse_2d"])  # an item keeps its camera across epochs
    assert not torch.allclose(ds[11]["sparse_2d_clean"], a["sparse_2d_clean"])
    occluded = HierarchicalPoseDataset(tiny, split="all", random_views=True, occlusion=Occlusion(mask_ratio=0.2))
    assert int((~occluded[4]["sparse_visible"]).sum()) == 3
    hidden = [occluded[i]["sparse_visible"] for i in range(8)]
    occluded.set_epoch(1)  # occlusion changes with the epoch, the camera does not
    assert any(not torch.equal(h, occluded[i]["sparse_visible"]) for i, h in enumerate(hidden))
    half = HierarchicalPoseDataset(tiny, split="all", random_views=0.5, seed=3)
    cams = torch.tensor([int(half[i]["camera"]) for i in range(len(half))])
    assert 0.35 < float((cams == -1).float().mean()) < 0.65
    rig = HierarchicalPoseDataset(tiny, split="all")
    for i in torch.nonzero(cams >= 0).flatten()[:5].tolist():  # the others come from the file's cameras
        torch.testing.assert_close(half[i]["sparse_2d"], rig[i]["sparse_2d"])
    batch = half.__getitems__(list(range(16)))  # batched == single, in order
    for i, item in enumerate(batch):
        torch.testing.assert_close(item["sparse_2d"], half[i]["sparse_2d"])
    with pytest.raises(ValueError, match="random_views must be a fraction"):
        HierarchicalPoseDataset(tiny, random_views=1.5)
    with pytest.raises(ValueError, match="exclude each other"):
        HierarchicalPoseDataset(tiny, random_views=True, use_detections=True)


def test_dataset_from_arrays_matches_file(tiny):
    from_file = HierarchicalPoseDataset(tiny, split="test")
    from_arrays = HierarchicalPoseDataset(dict(load_dataset(tiny)), split="test")
    assert len(from_file) == len(from_arrays) == 40
    for key, value in from_file[7].items():
        assert torch.equal(value, from_arrays[7][key]), key
    with pytest.raises(ValueError, match="missing key"):
        HierarchicalPoseDataset({"world_sparse": np.zeros((2, 17, 3))})


def test_batched_items_match_single_items(tiny):
    ds = HierarchicalPoseDataset(tiny, split="all", occlusion=Occlusion(mask_ratio=(0.0, 0.6), crop_ratio=0.3,
                                                                         noise_px=2.0, probability=0.5), seed=11)
    batch = ds.__getitems__([5, 9, 3, 100])
    for position, index in enumerate([5, 9, 3, 100]):
        single = ds[index]
        for key in single:
            assert torch.equal(batch[position][key], single[key]), (index, key)
    hidden = [int((~ds[i]["sparse_visible"]).sum()) for i in range(60)]
    assert min(hidden) == 0 and max(hidden) >= 5  # probability 0.5: some items untouched, others occluded
    with pytest.raises(IndexError):
        ds.__getitems__([0, len(ds)])


def test_levels_3d_are_the_points_in_the_camera_frame(tiny):
    arrays = load_dataset(tiny)
    plain = HierarchicalPoseDataset(tiny, split="all")
    ds = HierarchicalPoseDataset(tiny, split="all", levels_3d=True)
    assert "dense_3d" not in plain[0]
    for index in (0, 5, len(ds) - 1):
        item, f, c = ds[index], *divmod(index, ds.num_cameras)
        frame = ds.frames[f]
        for key, level in (("dense_3d", "world_dense"), ("fine_3d", "world_fine")):
            rel = arrays[level][frame] - arrays["world_sparse"][frame, :1]
            expect = rel @ arrays["cam_R"][c].T  # root-relative camera frame (the translation cancels)
            np.testing.assert_allclose(item[key].numpy(), expect, atol=1e-5)
        # the same frame as sparse_3d: camera-frame points minus the camera-frame root
        cam = arrays["world_sparse"][frame] @ arrays["cam_R"][c].T
        np.testing.assert_allclose(item["sparse_3d"].numpy(), cam - cam[:1], atol=1e-5)
        torch.testing.assert_close(item["sparse_2d"], plain[index]["sparse_2d"])
    # random views: rotations of the same root-relative offsets (lengths kept), consistent with sparse_3d
    views = HierarchicalPoseDataset(tiny, split="all", random_views=True, seed=3, levels_3d=True)
    for index in (1, 7):
        item, frame = views[index], views.frames[index // views.num_cameras]
        rel = arrays["world_fine"][frame] - arrays["world_sparse"][frame, :1]
        np.testing.assert_allclose(item["fine_3d"].norm(dim=-1).numpy(), np.linalg.norm(rel, axis=-1), atol=1e-4)
        joints = arrays["world_sparse"][frame] - arrays["world_sparse"][frame, :1]
        # one rotation maps both: recover it from the joints (least squares) and apply it to the fine points
        u, _, vt = np.linalg.svd(joints.T @ item["sparse_3d"].numpy().astype(np.float64))
        rot = (u @ vt).T
        np.testing.assert_allclose(item["fine_3d"].numpy(), rel @ rot.T, atol=1e-3)
