"""Human3.6M support, part 1: calibration files in both published layouts, the 3D and 2D loaders, 2D layouts."""

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skeletok.data.sets.fileformat import load_dataset
from skeletok.data.sets.h36m import (
    CAMERA_IDS,
    H36M_32_TO_17,
    h36m_action,
    h36m_cameras,
    h36m_to_dataset,
    load_h36m_2d,
    load_h36m_3d,
    load_h36m_cameras,
)
from tests.h36m_fixtures import (  # noqa: F401 (fixtures)
    CALIBRATED,
    COCO_META,
    H36M_META,
    calibration_files,
    h36m_files,
    mocap,
)


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
