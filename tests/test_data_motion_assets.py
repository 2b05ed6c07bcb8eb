"""The committed real motion assets: frame counts, units, up axis, bone lengths, size."""

import numpy as np
import pytest

from skeletok.data.motion.mapping import get_mapping
from skeletok.data.motion.assets import ASSET_DIR, SOURCES, _save, load_motion_assets

HOLOSOMA_FRAMES = [2801, 2423, 3011, 2401, 2303]  # 12,939 frames at 120 fps
DEEPMIMIC_CLIPS = 20
DEEPMIMIC_FRAMES_30FPS = 1209  # 1,810 keyframes at 16-60 fps, resampled to 30 fps


@pytest.fixture(scope="module")
def motions():
    return load_motion_assets()


def by_source(motions, source):
    return [m for m in motions if m.name.startswith(source + "/")]


def test_frame_counts_and_rates(motions):
    holo = by_source(motions, "holosoma")
    assert [m.num_frames for m in holo] == HOLOSOMA_FRAMES and {m.fps for m in holo} == {120.0}
    assert {m.action for m in holo} == {"climb"}
    deep = by_source(motions, "deepmimic")
    assert len(deep) == DEEPMIMIC_CLIPS and sum(m.num_frames for m in deep) == DEEPMIMIC_FRAMES_30FPS
    assert {m.fps for m in deep} == {30.0}
    assert {"backflip", "cartwheel", "crawl", "dance_a", "getup_facedown", "walk", "turn_left"} <= {m.action for m in deep}
    bvh = by_source(motions, "bvhtoolbox")
    assert [(m.num_frames, m.fps, m.action) for m in bvh] == [(69, 30.0, None), (455, 30.0, None)]


def test_plausible_bodies_z_up(motions):
    for m in motions:
        i = m.joint_names.index
        femur = m.bone_lengths()[:, i("LeftLeg")]  # hip -> knee
        assert 0.3 < femur.min() and femur.max() < 0.6, m.name
        assert np.ptp(femur) < 0.01, m.name  # rigid skeletons, 1 mm storage
        top = m.positions[:, i("Head") if "Head" in m.joint_names else i("Neck"), 2]
        feet = m.positions[:, [i("LeftFoot"), i("RightFoot")], 2].mean(1)
        assert np.median(top - feet) > 0.1, m.name  # Z-up: the head is above the feet
        assert m.positions[..., 2].min() > -0.1, m.name  # ground near z = 0
    walk = next(m for m in motions if m.name == "deepmimic/walk")
    assert np.median(walk.positions[:, walk.joint_names.index("Neck"), 2]) > 1.2


def test_source_names_and_mapping(motions):
    raw = load_motion_assets(canonical=False, sources=["holosoma", "deepmimic"])
    assert raw[0].num_joints == 25 and "LeftHandIndex1" in raw[0].joint_names and raw[5].joint_names[0] == "root"
    np.testing.assert_array_equal(get_mapping("holosoma").apply(raw[0]).positions, motions[0].positions)
    with pytest.raises(ValueError, match="sources must be among"):
        load_motion_assets(sources=["amass"])


def test_files_small_and_deterministic(tmp_path):
    total = sum((ASSET_DIR / f"motion_{s}.npz").stat().st_size for s in SOURCES)
    assert total < 6_000_000
    raw = load_motion_assets(canonical=False, sources=["deepmimic"])
    _save(tmp_path / "a.npz", raw, "deepmimic")
    _save(tmp_path / "b.npz", raw, "deepmimic")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() == (ASSET_DIR / "motion_deepmimic.npz").read_bytes()
    assert "Apache" in (ASSET_DIR / "NOTICE.motion.txt").read_text()
