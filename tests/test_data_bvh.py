"""BVH reader/writer: round trips against an independent scipy FK, auto up/unit, malformed files."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from skeletok.data.motion.bvh import BvhSkeleton, parse_bvh, read_bvh, write_bvh
from skeletok.data.motion import read_motion
from skeletok.errors import MotionFileError, MotionWarning

# A human-like skeleton, Z-up, metres: (name, parent, offset, channels)
POS6 = ("Xposition", "Yposition", "Zposition")
JOINTS = [
    ("Hips", -1, (0.0, 0.0, 0.0), POS6 + ("Zrotation", "Xrotation", "Yrotation")),
    ("Spine", 0, (0.0, 0.0, 0.12), ("Yrotation", "Xrotation", "Zrotation")),
    ("Chest", 1, (0.0, 0.01, 0.25), ("Zrotation", "Xrotation", "Yrotation")),
    ("Neck", 2, (0.0, 0.0, 0.22), POS6 + ("Yrotation", "Xrotation", "Zrotation")),  # position channels off the root
    ("Head", 3, (0.0, 0.02, 0.1), ("Xrotation", "Zrotation", "Yrotation")),
    ("LeftArm", 2, (0.18, 0.0, 0.18), ("Zrotation", "Xrotation", "Yrotation")),
    ("LeftForeArm", 5, (0.28, 0.0, 0.0), ("Yrotation",)),
    ("LeftHand", 6, (0.25, 0.0, 0.0), ()),
    ("RightArm", 2, (-0.18, 0.0, 0.18), ("Yrotation", "Xrotation", "Zrotation")),
    ("RightForeArm", 8, (-0.28, 0.0, 0.0), ("Yrotation",)),
    ("LeftUpLeg", 0, (0.1, 0.0, -0.05), ("Zrotation", "Xrotation", "Yrotation")),
    ("LeftLeg", 10, (0.0, 0.0, -0.42), ("Xrotation",)),
    ("LeftFoot", 11, (0.0, 0.0, -0.41), ("Yrotation", "Xrotation", "Zrotation")),
    ("RightUpLeg", 0, (-0.1, 0.0, -0.05), ("Zrotation", "Xrotation", "Yrotation")),
    ("RightLeg", 13, (0.0, 0.0, -0.42), ("Xrotation",)),
    ("RightFoot", 14, (0.0, 0.0, -0.41), ("Yrotation", "Xrotation", "Zrotation")),
]
ENDS = [(4, (0.0, 0.0, 0.18)), (7, (0.08, 0.0, 0.0)), (9, (-0.3, 0.0, 0.0)), (12, (0.0, -0.15, -0.05)), (15, (0.0, -0.15, -0.05))]


def z_to_y(v):
    """Inverse of the reader's Y-up -> Z-up rotation: (x, y, z) -> (x, z, -y)."""
    v = np.asarray(v, dtype=np.float64)
    return np.stack([v[..., 0], v[..., 2], -v[..., 1]], axis=-1)


def make(up="z", scale=1.0, frames=7, seed=0):
    """A skeleton in file axes/units and random channel values."""
    conv = (lambda v: z_to_y(v) * scale) if up == "y" else (lambda v: np.asarray(v, dtype=np.float64) * scale)
    skel = BvhSkeleton(
        names=[j[0] for j in JOINTS], parents=np.array([j[1] for j in JOINTS]),
        offsets=conv([j[2] for j in JOINTS]), channels=[j[3] for j in JOINTS],
        end_sites=np.array([e[0] for e in ENDS]), end_offsets=conv([e[1] for e in ENDS]),
    )
    rng = np.random.default_rng(seed)
    cols = []
    for i, ch in enumerate(skel.channels):
        for c in ch:
            if c.endswith("rotation"):
                cols.append(rng.uniform(-60, 60, frames))
            else:
                axis = "XYZ".index(c[0])
                base = np.array([0.0, 0.0, 0.95]) if i == 0 else np.asarray(JOINTS[i][2])
                pos = conv(base + rng.normal(0, 0.03, 3))
                cols.append(pos[axis] + rng.normal(0, 0.01 * scale, frames))
    return skel, np.stack(cols, axis=1)


def scipy_fk(skel, frames):
    """Independent FK: scipy intrinsic Euler angles, position channels replace the offset."""
    t = frames.shape[0]
    glob_r, glob_p, col = [], [], 0
    for i, ch in enumerate(skel.channels):
        trans = np.tile(skel.offsets[i], (t, 1))
        rot_axes, rot_cols = "", []
        for c in ch:
            if c.endswith("position"):
                trans[:, "XYZ".index(c[0])] = frames[:, col]
            else:
                rot_axes += c[0]
                rot_cols.append(col)
            col += 1
        local = Rotation.from_euler(rot_axes, frames[:, rot_cols], degrees=True) if rot_axes else Rotation.identity(t)
        p = skel.parents[i]
        if p < 0:
            glob_r.append(local)
            glob_p.append(trans)
        else:
            glob_r.append(glob_r[p] * local)
            glob_p.append(glob_p[p] + glob_r[p].apply(trans))
    ends = [glob_p[j] + glob_r[j].apply(np.tile(o, (t, 1))) for j, o in zip(skel.end_sites, skel.end_offsets)]
    return np.stack(glob_p + ends, axis=1)


@pytest.mark.parametrize("up,unit,scale", [("z", "m", 1.0), ("y", "cm", 100.0), ("y", "m", 1.0), ("z", "cm", 100.0)])
@pytest.mark.parametrize("auto", [False, True])
def test_round_trip_matches_scipy_fk(tmp_path, up, unit, scale, auto):
    skel, frames = make(up, scale)
    path = tmp_path / "a.bvh"
    write_bvh(path, skel, frames, 1 / 30)
    m = read_bvh(path) if auto else read_bvh(path, up=up, unit=unit)
    expected = scipy_fk(skel, frames) / scale
    if up == "y":
        expected = np.stack([expected[..., 0], -expected[..., 2], expected[..., 1]], axis=-1)
    assert m.fps == 30.0 and m.num_frames == 7
    assert m.joint_names[:16] == [j[0] for j in JOINTS] and m.joint_names[16] == "Head_End"
    np.testing.assert_allclose(m.positions, expected, atol=1e-5)


@pytest.mark.parametrize("up,scale,unit", [("z", 1.0, "m"), ("y", 100.0, "cm"), ("y", 1 / 0.0254, "inch"), ("z", 1000.0, "mm")])
def test_auto_up_and_unit_on_a_rest_pose(tmp_path, up, scale, unit):
    skel, frames = make(up, scale, frames=2)
    rot = [k for k, c in enumerate(c for ch in skel.channels for c in ch) if c.endswith("rotation")]
    frames[:, rot] = 0.0
    write_bvh(tmp_path / "a.bvh", skel, frames, 1 / 30)
    m, ref = read_bvh(tmp_path / "a.bvh"), read_bvh(tmp_path / "a.bvh", up=up, unit=unit)
    np.testing.assert_allclose(m.positions, ref.positions, atol=1e-6)
    head_end, feet = m.positions[:, m.index("Head_End")], m.positions[:, [m.index("LeftFoot"), m.index("RightFoot")]]
    np.testing.assert_allclose(head_end[:, 2] - feet[..., 2].mean(1), 0.12 + 0.25 + 0.22 + 0.1 + 0.18 + 0.88, atol=0.08)


def test_write_parse_is_lossless_and_end_sites_optional(tmp_path):
    skel, frames = make("z", 1.0, frames=3, seed=4)
    write_bvh(tmp_path / "a.bvh", skel, frames, 0.008333)
    s2, f2, ft = parse_bvh(tmp_path / "a.bvh")
    assert s2.names == skel.names and s2.channels == skel.channels and ft == pytest.approx(0.008333)
    np.testing.assert_allclose(s2.offsets, skel.offsets, atol=1e-6)
    np.testing.assert_allclose(f2, frames, atol=1e-6)
    m = read_bvh(tmp_path / "a.bvh", end_sites=False)
    assert m.num_joints == 16 and m.fps == 120.0
    assert read_motion(tmp_path / "a.bvh").num_joints == 21


def test_bad_arguments(tmp_path):
    skel, frames = make()
    write_bvh(tmp_path / "a.bvh", skel, frames, 1 / 30)
    for kw in ({"up": "x"}, {"unit": "furlong"}, {"unit": -1.0}):
        with pytest.raises(ValueError):
            read_bvh(tmp_path / "a.bvh", **kw)


def good_text(tmp_path):
    skel, frames = make(frames=3)
    write_bvh(tmp_path / "good.bvh", skel, frames, 1 / 30)
    return (tmp_path / "good.bvh").read_text()


def test_truncated_file_names_file_and_line(tmp_path):
    lines = good_text(tmp_path).splitlines()
    bad = tmp_path / "trunc.bvh"
    bad.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.warns(MotionWarning, match=r"trunc\.bvh: line \d+: 'Frames: 3' declared but 2 frame lines found"):
        assert read_bvh(bad).num_frames == 2
    bad.write_text("\n".join(lines[:20]))
    with pytest.raises(ValueError, match=r"trunc\.bvh: unexpected end of file"):
        read_bvh(bad)


def test_bad_channel_count_and_junk(tmp_path):
    text = good_text(tmp_path)
    bad = tmp_path / "chan.bvh"
    bad.write_text(text.replace("CHANNELS 3 Yrotation Xrotation Zrotation", "CHANNELS 4 Yrotation Xrotation Zrotation", 1))
    with pytest.raises(ValueError, match=r"chan\.bvh: line 10: bad or repeated channel 'JOINT'"):
        read_bvh(bad)
    bad.write_text(text.replace("CHANNELS 3 Yrotation", "CHANNELS 9 Yrotation", 1))
    with pytest.raises(ValueError, match=r"chan\.bvh: line 9: CHANNELS count must be 0..6"):
        read_bvh(bad)
    lines = text.splitlines()
    lines[-2] = lines[-2] + " 1.0"
    bad.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=rf"chan\.bvh: line {len(lines) - 1}: frame 2 has \d+ values"):
        read_bvh(bad)
    bad.write_text("hello world\nthis is not a bvh\n")
    with pytest.raises(ValueError, match=r"chan\.bvh: line 1: expected 'HIERARCHY'"):
        read_bvh(bad)
    with pytest.raises(ValueError, match="cannot read"):
        read_bvh(tmp_path / "missing.bvh")


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXT, st.booleans())
def test_random_text_only_raises_value_error(tmp_path, text, header):
    p = tmp_path / "r.bvh"
    p.write_text(("HIERARCHY\nROOT a\n{\n" if header else "") + text, encoding="utf-8")
    with pytest.raises(MotionFileError, match="r.bvh"):
        read_bvh(p)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_file_only_raises_value_error(tmp_path, data):
    lines = good_text(tmp_path).splitlines()
    k = data.draw(st.integers(0, len(lines) - 1))
    op = data.draw(st.sampled_from(["drop", "dup", "junk", "cut"]))
    if op == "drop":
        lines = lines[:k] + lines[k + 1:]
    elif op == "dup":
        lines = lines[:k] + [lines[k]] + lines[k:]
    elif op == "junk":
        toks = lines[k].split() or [""]
        i = data.draw(st.integers(0, len(toks) - 1))
        toks[i] = data.draw(st.sampled_from(["}", "{", "nan", "JOINT", "End", "-", "1e999", "MOTION", "7", "-3"]))
        lines[k] = " ".join(toks)
    else:
        lines = lines[:k]
    p = tmp_path / "m.bvh"
    p.write_text("\n".join(lines))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MotionWarning)
            m = read_bvh(p)
    except MotionFileError as e:
        assert "m.bvh" in str(e)
    else:
        assert np.isfinite(m.positions).all()


def test_repairs_and_refusals(tmp_path):
    text = good_text(tmp_path)
    p = tmp_path / "x.bvh"
    # more frame lines than declared: all read, with a warning naming the file
    p.write_text(text.replace("Frames: 3", "Frames: 2"))
    with pytest.warns(MotionWarning, match=r"x\.bvh: line \d+: 'Frames: 2' declared but 3 frame lines found"):
        assert read_bvh(p).num_frames == 3
    p.write_text(text.replace("Frames: 3", "Frames: 0"))
    with pytest.warns(MotionWarning, match="'Frames: 0' declared but 3"):
        assert read_bvh(p).num_frames == 3
    # "Frames:3" and "Time:0.0333" written without a space, a byte-order mark, CRLF line ends
    p.write_bytes(("\ufeff" + text.replace("Frames: 3", "Frames:3").replace("Time: ", "Time:")).replace(
        "\n", "\r\n").encode("utf-8"))
    assert read_bvh(p).num_frames == 3
    # a cut last line is dropped with a warning
    lines = text.rstrip("\n").splitlines()
    p.write_text("\n".join(lines[:-1] + [" ".join(lines[-1].split()[:5])]) + "\n")
    with pytest.warns(MotionWarning, match=r"x\.bvh: line \d+: the last frame line has 5 of \d+ values"):
        assert read_bvh(p).num_frames == 2
    # no frames at all, a zero frame time
    p.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(MotionFileError, match=r"x\.bvh: line \d+: no frame lines after the header"):
        read_bvh(p)
    p.write_text(text.replace("Frame Time: 0.03333333", "Frame Time: 0"))
    with pytest.raises(MotionFileError, match=r"x\.bvh: line \d+: Frame Time must be > 0"):
        read_bvh(p)
    # two characters in one file
    hierarchy, motion = text.split("MOTION")
    second = hierarchy.replace("HIERARCHY\n", "").replace("ROOT Hips", "ROOT Hips2")
    for name in [j[0] for j in JOINTS[1:]]:
        second = second.replace(f"JOINT {name}\n", f"JOINT {name}2\n")
    p.write_text(hierarchy + second + "MOTION" + motion)
    with pytest.raises(MotionFileError, match=r"x\.bvh: line \d+: a second ROOT hierarchy \('ROOT Hips2'\) .* "
                                              r"export each character to its own BVH file"):
        read_bvh(p)


def test_joint_names_with_spaces_and_braces_on_the_name_line(tmp_path):
    text = good_text(tmp_path)
    p = tmp_path / "s.bvh"
    p.write_text(re.sub(r"JOINT LeftArm\n\s*\{", "JOINT Bip01 L UpperArm {",
                        text.replace("JOINT LeftForeArm\n", "JOINT  Bip01 L Forearm\t\n")))
    m = read_bvh(p)
    ref = read_bvh(tmp_path / "good.bvh")
    assert m.joint_names[6] == "Bip01 L Forearm" and m.joint_names[5] == "Bip01 L UpperArm"
    np.testing.assert_array_equal(m.positions, ref.positions)
    # an end site whose name is taken by a joint gets a number
    p.write_text(text.replace("JOINT Head\n", "JOINT Neck_End\n"))
    names = read_bvh(p).joint_names
    assert "Neck_End" in names and "Neck_End_End" in names
    p.write_text(text.replace("JOINT Spine\n", "JOINT Head_End\n"))
    names = read_bvh(p).joint_names
    assert names.count("Head_End") == 1 and "Head_End2" in names
