"""Keypoint file readers for `skeletok hipart infer`."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipes.hipart.keypoints import read_keypoints
from skeletok.errors import KeypointFileError
from skeletok.skeleton import COCO_17, H36M_17


def _coco_pose(rng):
    xy = rng.uniform(100, 900, size=(17, 2))
    scores = rng.uniform(0.5, 1.0, size=17)
    scores[3] = 0.1  # left ear barely seen
    return xy, scores


def test_coco_results_json_converted_to_h36m(tmp_path):
    rng = np.random.default_rng(0)
    xy, scores = _coco_pose(rng)
    flat = np.concatenate([xy, scores[:, None]], axis=1).reshape(-1).tolist()
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": flat, "score": 0.9}]))
    kp = read_keypoints(path, image_size=(1000, 1000))
    assert kp.points.shape == (1, 17, 2) and kp.source_layout == "coco17"
    assert kp.image_size == (1000.0, 1000.0)
    hip_l, hip_r = COCO_17.index("left_hip"), COCO_17.index("right_hip")
    pelvis = H36M_17.index("pelvis")
    np.testing.assert_allclose(kp.points[0, pelvis], (xy[hip_l] + xy[hip_r]) / 2, atol=1e-3)
    # shoulders and wrists carry over unchanged
    np.testing.assert_allclose(
        kp.points[0, H36M_17.index("left_wrist")], xy[COCO_17.index("left_wrist")], atol=1e-3
    )
    assert kp.visible.dtype == bool and kp.visible.shape == (1, 17)


def test_openpose_and_mmpose_and_annotations(tmp_path):
    rng = np.random.default_rng(1)
    xy, scores = _coco_pose(rng)
    trip = np.concatenate([xy, scores[:, None]], axis=1)
    (tmp_path / "op.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": trip.reshape(-1).tolist()}] * 2}))
    (tmp_path / "mm.json").write_text(
        json.dumps([{"instances": [{"keypoints": xy.tolist(), "keypoint_scores": scores.tolist()}]}])
    )
    ann = trip.copy()
    ann[:, 2] = 2
    ann[5, 2] = 0
    (tmp_path / "ann.json").write_text(
        json.dumps({"images": [{"id": 1, "width": 640, "height": 480}], "annotations": [{"keypoints": ann.reshape(-1).tolist()}]})
    )
    op = read_keypoints(tmp_path / "op.json")
    mm = read_keypoints(tmp_path / "mm.json")
    an = read_keypoints(tmp_path / "ann.json")
    assert op.points.shape == (2, 17, 2)
    np.testing.assert_allclose(op.points[0], mm.points[0], atol=1e-4)
    assert an.image_size == (640.0, 480.0)
    # COCO left shoulder (5) unlabelled -> H36M left shoulder invisible
    assert not an.visible[0, H36M_17.index("left_shoulder")]


def test_npz_h36m_layout_passes_through(tmp_path):
    pts = np.random.default_rng(2).uniform(0, 1000, size=(3, 17, 2)).astype(np.float32)
    scores = np.full((3, 17), 0.9, np.float32)
    scores[1, 4] = 0.0
    np.savez(tmp_path / "k.npz", keypoints=pts, scores=scores, layout="h36m17", image_size=np.array([1000, 1002]))
    kp = read_keypoints(tmp_path / "k.npz")
    np.testing.assert_array_equal(kp.points, pts)
    assert kp.image_size == (1000.0, 1002.0)
    assert kp.visible.sum() == 3 * 17 - 1 and not kp.visible[1, 4]


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"foo": 1}', "unrecognised JSON layout"),
        ('[{"keypoints": [1, 2, 3]}]', "1 keypoints, expected 17"),
        ('{"people": [{"face": []}]}', "pose_keypoints_2d"),
    ],
)
def test_bad_json_names_file_and_field(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        read_keypoints(path)
    assert "bad.json" in str(err.value)


def test_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_keypoints(tmp_path / "nope.json")
    (tmp_path / "k.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="unsupported keypoint file type"):
        read_keypoints(tmp_path / "k.txt")


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_json_parser_never_crashes_on_junk(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("junk") / "junk.json"
    path.write_text(text)
    try:
        read_keypoints(path)
    except KeypointFileError as err:
        assert str(err).startswith(f"{path}: ")


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.sampled_from(["keypoints", "people", "instances", "annotations", "images", "x"]), kids, max_size=3),
        max_leaves=20,
    )
)
def test_structured_junk_gives_value_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("junk") / "s.json"
    path.write_text(json.dumps(data))
    try:
        read_keypoints(path)
    except KeypointFileError as err:
        assert str(err).startswith(f"{path}: ")


KP_FIELDS = {
    "keypoints": st.sampled_from([np.zeros((2, 17, 2)), np.ones((17, 3)), np.zeros((1, 16, 2)), np.array(["a"] * 34),
                                  np.full((1, 17, 2), np.nan), np.zeros((0, 17, 3)), np.array([None], dtype=object),
                                  np.zeros((1, 17, 2), dtype=bool), np.array(5.0)]),
    "scores": st.sampled_from([np.ones((2, 17)), np.ones(17), np.array("x"), np.full((1, 17), -3.0)]),
    "layout": st.sampled_from([np.array("coco17"), np.array("h36m17"), np.array("smpl"), np.array(3)]),
    "image_size": st.sampled_from([np.array([1920, 1080]), np.array([1920]), np.array([0, 0]), np.array("big"),
                                   np.array([[1, 2], [3, 4]])]),
}


@settings(max_examples=60, deadline=None)
@given(fields=st.fixed_dictionaries({}, optional=KP_FIELDS), cut=st.sampled_from([None, 0, 40, 300]))
def test_npz_keypoints_fuzz(tmp_path_factory, fields, cut):
    path = tmp_path_factory.mktemp("junk") / "k.npz"
    np.savez(path, **fields)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    try:
        kp = read_keypoints(path)
    except KeypointFileError as err:
        assert str(err).startswith(f"{path}: ")
    else:
        assert kp.points.shape[1:] == (17, 2) and np.isfinite(kp.points).all()
