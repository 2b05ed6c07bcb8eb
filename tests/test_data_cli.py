import numpy as np
import pytest

from skeletok.cli import main
from skeletok.data.sets.fileformat import load_dataset

# A small CMU-named skeleton, Y-up, centimetres: (name, parent, offset); end sites appended by the writer.
JOINTS = [
    ("Hips", None, (0, 95, 0)),
    ("LeftUpLeg", "Hips", (9, -3, 0)), ("LeftLeg", "LeftUpLeg", (0, -42, 0)), ("LeftFoot", "LeftLeg", (0, -41, 0)),
    ("RightUpLeg", "Hips", (-9, -3, 0)), ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -41, 0)),
    ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 18, 0)), ("Neck", "Spine1", (0, 22, 0)),
    ("Head", "Neck", (0, 10, 0)),
    ("LeftArm", "Spine1", (17, 18, 0)), ("LeftForeArm", "LeftArm", (28, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightArm", "Spine1", (-17, 18, 0)), ("RightForeArm", "RightArm", (-28, 0, 0)),
    ("RightHand", "RightForeArm", (-25, 0, 0)),
]
ENDS = {"LeftFoot": (0, -5, 12), "RightFoot": (0, -5, 12), "Head": (0, 16, 0), "LeftHand": (8, 0, 0),
        "RightHand": (-8, 0, 0)}


def write_bvh(path, frames=16, swing=1.0):
    children = {}
    for name, parent, _ in JOINTS:
        children.setdefault(parent, []).append(name)
    offsets = {n: o for n, _, o in JOINTS}
    lines = ["HIERARCHY"]

    def block(name, depth):
        pad = "  " * depth
        kind = "ROOT" if depth == 0 else "JOINT"
        lines.append(f"{pad}{kind} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {' '.join(str(float(v)) for v in offsets[name])}")
        chans = "6 Xposition Yposition Zposition" if depth == 0 else "3"
        lines.append(f"{pad}  CHANNELS {chans} Zrotation Xrotation Yrotation")
        for child in children.get(name, []):
            block(child, depth + 1)
        if name in ENDS:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {' '.join(map(str, map(float, ENDS[name])))}",
                          pad + "  }"])
        lines.append(pad + "}")

    block("Hips", 0)
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.033333"]
    names = [n for n, _, _ in JOINTS]
    order = []

    def walk(name):
        order.append(name)
        for child in children.get(name, []):
            walk(child)

    walk("Hips")
    for t in range(frames):
        phase = swing * np.sin(2 * np.pi * t / frames)
        values = [3.0 * t, 95.0, 0.0]
        for name in order:
            angle = {"LeftUpLeg": 25, "RightUpLeg": -25, "LeftLeg": 20, "RightLeg": 20, "LeftArm": 30,
                     "RightArm": -30}.get(name, 0) * phase
            values += [0.0, angle, 5.0 * t if name == "Hips" else 0.0]
        lines.append(" ".join(f"{v:.4f}" for v in values))
    assert len(order) == len(names)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mocap(tmp_path_factory):
    root = tmp_path_factory.mktemp("mocap")
    walk = write_bvh(root / "walk_01.bvh")
    kick = write_bvh(root / "kick_02.bvh", swing=2.0)
    return root, walk, kick


@pytest.fixture(scope="module")
def built(mocap):
    root, walk, kick = mocap
    out = root / "data.npz"
    assert main(["data", "from-mocap", str(walk), str(kick), "--out", str(out), "--test-fraction", "0.5"]) == 0
    return out


def test_from_mocap_builds_a_valid_file(built, capsys):
    d = load_dataset(built)
    assert list(d["sequence_names"]) == ["walk_01", "kick_02"]
    assert sorted(d["action_names"]) == ["kick", "walk"]
    assert len(d["world_sparse"]) == 2 * 13  # 16 frames at 30 fps -> 13 frames at 25 fps
    assert set(d["split"]) == {0, 1}
    assert all(str(s).endswith(".bvh") for s in d["sequence_source"])
    from skeletok.data.motion.mapping import detect_mapping
    from skeletok.data.motion import read_motion

    detected = detect_mapping(read_motion(str(d["sequence_source"][0])).joint_names)
    assert list(d["sequence_mapping"]) == [detected, detected]
    # retargeted onto the body: the pelvis-to-head height of a standing person
    height = d["world_sparse"][:, 10, 2] - d["world_sparse"][:, 0, 2]
    assert 0.5 < height.mean() < 0.9


def test_from_mocap_single_file_prints(mocap, tmp_path, capsys):
    _, walk, _ = mocap
    out = tmp_path / "one.npz"
    assert main(["data", "from-mocap", str(walk), "--out", str(out), "--max-frames", "5", "--mapping", "cmu_bvh",
                 "--action", "stroll"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "5 frames x 4 cameras" in printed and "train split" in printed
    d = load_dataset(out)
    assert list(d["action_names"]) == ["stroll"] or all(n.startswith("cluster") for n in d["action_names"])


def test_show_writes_a_png(built, tmp_path, capsys):
    out = tmp_path / "levels.png"
    assert main(["data", "show", str(built), "--frame", "3", "--camera", "1", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_show_mesh_matches_points(built):
    from skeletok.data.body.model import BodyModel
    from skeletok.data.body.levels import build_levels
    from skeletok.data.sets.show import posed_mesh

    d = load_dataset(built)
    body = BodyModel.load()
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    for frame in (0, 20):  # one frame of each sequence (different body shapes)
        verts, faces = posed_mesh(d, frame, body)
        assert faces.shape[1] == 3
        # the rebuilt mesh gives back exactly the stored fine and dense points of that frame
        fine, dense = levels.hierarchy.points(verts[None])
        np.testing.assert_allclose(fine[0], d["world_fine"][frame], atol=1e-4)
        np.testing.assert_allclose(dense[0], d["world_dense"][frame], atol=1e-4)


def test_errors_exit_2(built, tmp_path, capsys):
    assert main(["data", "show", str(built), "--frame", "999", "--out", str(tmp_path / "x.png")]) == 2
    assert "skeletok: error: frame must be in [0, 26)" in capsys.readouterr().err
    assert main(["data", "from-mocap", str(tmp_path / "none.bvh"), "--out", str(tmp_path / "y.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["data", "show", str(tmp_path / "missing.npz"), "--frame", "0", "--out", str(tmp_path / "z.png")]) == 2
    assert "skeletok: error" in capsys.readouterr().err
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n")
    assert main(["data", "from-mocap", str(bad), "--out", str(tmp_path / "w.npz")]) == 2


def test_build_tiny_default(tmp_path, capsys):
    pytest.importorskip("skeletok.data.motion.assets")
    out = tmp_path / "default.npz"
    assert main(["data", "build", "--out", str(out), "--max-frames", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    d = load_dataset(out)
    assert (np.bincount(d["sequence"]) <= 4).all() and set(d["split"]) == {0, 1, 2}
    from skeletok.data.sets.build import DEFAULT_TEST_SEQUENCES, DEFAULT_VAL_SEQUENCES

    takes = d["sequence_take"]
    split_of = {str(t): int(d["split"][d["sequence"] == s][0]) for s, t in enumerate(takes)}
    assert {t for t, v in split_of.items() if v == 1} == set(DEFAULT_TEST_SEQUENCES)
    assert {t for t, v in split_of.items() if v == 2} == set(DEFAULT_VAL_SEQUENCES)
    # training takes come as 4 variants (2 body shapes, each also mirrored); val/test takes as recorded
    per_take = {t: int((takes == t).sum()) for t in set(takes.tolist())}
    assert all(n == (4 if split_of[t] == 0 else 1) for t, n in per_take.items())
    # the walker clips are near duplicates of each other: one group, one side of the split
    walker = [s for s, t in enumerate(takes) if "walker/" in str(t)]
    assert len(set(d["sequence_group"][walker].tolist())) == 1
    # `build` films the default dataset with the fixed rig: no rig_shift, every pixel the fixed cameras' projection
    from skeletok.data.views.cameras import cameras_from_arrays, h36m_like_rig
    from skeletok.data.sets.build import RIG_TARGET

    assert "rig_shift" not in d
    for k, cam in enumerate(h36m_like_rig(RIG_TARGET)):
        np.testing.assert_allclose(cameras_from_arrays(d)[k].t, cam.t, atol=1e-5)
        np.testing.assert_allclose(d["pix_fine"][:, k], cam.project(d["world_fine"]), atol=1e-2)


def test_build_assets_wiring(tmp_path, monkeypatch, capsys):
    import skeletok.data.body.assets as body_assets
    import skeletok.data.motion.assets as motion_assets

    calls = {}

    def fake_motion(out_dir, cache_dir):
        calls["motion"] = (out_dir, cache_dir)
        return {"deepmimic": {"sequences": 20, "frames": 1400, "bytes": 1234}}

    def fake_body(out_path):
        calls["body"] = out_path
        return out_path

    monkeypatch.setattr(motion_assets, "build_motion_assets", fake_motion)
    monkeypatch.setattr(body_assets, "build_body_assets", fake_body)
    assert main(["data", "build-assets", "--out", str(tmp_path), "--cache", str(tmp_path / "cache")]) == 0
    assert calls == {"motion": (tmp_path, tmp_path / "cache"), "body": tmp_path / "body.npz"}
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'motion_deepmimic.npz'} (20 sequences" in printed
    assert f"wrote {tmp_path / 'body.npz'}" in printed

    def missing(out_path):
        raise ImportError("anny is not installed; pip install anny")

    monkeypatch.setattr(body_assets, "build_body_assets", missing)
    assert main(["data", "build-assets", "--out", str(tmp_path)]) == 2
    assert "skeletok: error: build-assets needs extra packages: anny" in capsys.readouterr().err
