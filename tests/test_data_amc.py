"""ASF/AMC reader/writer: round trip against an independent scipy FK of the Acclaim convention."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from skeletok.data.motion.asf_amc import AsfSkeleton, parse_amc, read_amc, read_asf, write_amc, write_asf
from skeletok.data.motion import read_motion
from skeletok.errors import MotionFileError, MotionWarning

# (name, parent, direction (Y-up world), length (file units), axis angles, axis order, dofs)
BONES = [
    ("lhipjoint", -1, (0.57, -0.75, 0.35), 2.4, (0, 0, 20.8), "XYZ", ()),
    ("lfemur", 0, (0.34, -0.94, 0.0), 7.2, (0, 0, 20), "XYZ", ("rx", "ry", "rz")),
    ("ltibia", 1, (0.34, -0.94, 0.0), 7.3, (0, 0, 20), "XYZ", ("rx",)),
    ("lfoot", 2, (0.0, 0.0, 1.0), 2.2, (-90, 7, 0), "XYZ", ("rz", "rx")),
    ("lowerback", -1, (0.0, 1.0, 0.0), 2.0, (0, 0, 0), "XYZ", ("rx", "ry", "rz")),
    ("upperback", 4, (0.0, 1.0, 0.0), 2.1, (0, 0, 0), "ZYX", ("ry", "rx", "rz")),
    ("lclavicle", 5, (0.9, 0.4, 0.0), 3.5, (0, 0, -20), "XYZ", ("ry", "rz")),
    ("lhumerus", 6, (1.0, 0.0, 0.0), 5.0, (0, 0, -90), "YXZ", ("rx", "ry", "rz")),
]


def skeleton(root_order=("TX", "TY", "TZ", "RX", "RY", "RZ"), root_axis="XYZ"):
    d = np.array([b[2] for b in BONES], dtype=np.float64)
    return AsfSkeleton(
        bone_names=[b[0] for b in BONES], parents=np.array([b[1] for b in BONES]),
        directions=d / np.linalg.norm(d, axis=1, keepdims=True), lengths=np.array([b[3] for b in BONES]),
        axes=np.array([b[4] for b in BONES], dtype=np.float64), axis_orders=[b[5] for b in BONES],
        dofs=[b[6] for b in BONES], root_order=root_order, root_axis=root_axis,
        root_position=np.zeros(3), root_orientation=np.array([0.0, 10.0, 0.0]), length_unit=0.45, name="test",
    )


def random_values(asf, frames=6, seed=0):
    rng = np.random.default_rng(seed)
    root = rng.uniform(-45, 45, (frames, len(asf.root_order)))
    for k, ch in enumerate(asf.root_order):
        if ch[0] == "T":
            root[:, k] = rng.normal(0, 10, frames) + (17.0 if ch == "TY" else 0.0)
    vals = {"root": root}
    vals |= {n: rng.uniform(-70, 70, (frames, len(d))) for n, d in zip(asf.bone_names, asf.dofs) if d}
    return vals


def scipy_fk(asf, vals):
    """Independent Acclaim FK with scipy extrinsic Euler angles (first letter applied first)."""
    root = vals["root"]
    t = len(root)
    trans = np.zeros((t, 3))
    rot_axes, rot_cols = "", []
    for k, ch in enumerate(asf.root_order):
        if ch[0] == "T":
            trans[:, "XYZ".index(ch[1])] += root[:, k]
        else:
            rot_axes += ch[1].lower()
            rot_cols.append(k)
    c = Rotation.from_euler(asf.root_axis.lower(), asf.root_orientation, degrees=True)
    mats = [c * Rotation.from_euler(rot_axes, root[:, rot_cols], degrees=True) * c.inv()]
    ends = [trans]
    for i, name in enumerate(asf.bone_names):
        c = Rotation.from_euler(asf.axis_orders[i].lower(), asf.axes[i], degrees=True)
        p = asf.parents[i] + 1
        if asf.dofs[i]:
            local = Rotation.from_euler("".join(d[1] for d in asf.dofs[i]), vals[name], degrees=True)
        else:
            local = Rotation.identity(t)
        m = mats[p] * c * local * c.inv()
        mats.append(m)
        ends.append(ends[p] + asf.lengths[i] * m.apply(np.tile(asf.directions[i], (t, 1))))
    return np.stack(ends, axis=1)


@pytest.mark.parametrize("root_order,root_axis", [(("TX", "TY", "TZ", "RX", "RY", "RZ"), "XYZ"),
                                                  (("RZ", "TX", "RY", "TY", "RX", "TZ"), "ZXY")])
def test_round_trip_matches_scipy_fk(tmp_path, root_order, root_axis):
    asf = skeleton(root_order, root_axis)
    vals = random_values(asf)
    write_asf(tmp_path / "s.asf", asf)
    write_amc(tmp_path / "s.amc", asf, vals)
    back = read_asf(tmp_path / "s.asf")
    assert back.bone_names == asf.bone_names and back.dofs == asf.dofs and back.root_order == asf.root_order
    np.testing.assert_allclose(back.directions, asf.directions, atol=1e-6)
    m = read_amc(tmp_path / "s.amc", back, fps=120)
    metres = scipy_fk(asf, vals) * 0.0254 / 0.45
    expected = np.stack([metres[..., 0], -metres[..., 2], metres[..., 1]], axis=-1)  # Y-up -> Z-up
    assert m.joint_names == ["root", *asf.bone_names] and m.num_frames == 6 and m.fps == 120
    np.testing.assert_allclose(m.positions, expected, atol=1e-5)
    # read_motion finds the .asf beside the .amc
    np.testing.assert_allclose(read_motion(tmp_path / "s.amc").positions, m.positions)


def test_rest_pose_is_directions_times_lengths(tmp_path):
    asf = skeleton()
    vals = {k: np.zeros_like(v) for k, v in random_values(asf, frames=1).items()}
    write_asf(tmp_path / "s.asf", asf)
    write_amc(tmp_path / "s.amc", asf, vals)
    m = read_amc(tmp_path / "s.amc", tmp_path / "s.asf", up="z")
    femur_end = (asf.directions[0] * 2.4 + asf.directions[1] * 7.2) * 0.0254 / 0.45
    np.testing.assert_allclose(m.positions[0, 2], femur_end, atol=1e-6)
    # femur length in metres: 7.2 units / 0.45 = 16 inches
    assert m.bone_lengths()[0, 2] == pytest.approx(16 * 0.0254, abs=1e-6)


def test_malformed_files_name_file_and_line(tmp_path):
    asf = skeleton()
    write_asf(tmp_path / "s.asf", asf)
    write_amc(tmp_path / "s.amc", asf, random_values(asf, frames=2))
    text = (tmp_path / "s.asf").read_text()
    lines = text.splitlines()
    k = next(i for i, ln in enumerate(lines) if "direction" in ln)
    bad = tmp_path / "bad.asf"
    bad.write_text("\n".join(lines[:k] + ["     direction 1 x 0"] + lines[k + 1:]))
    with pytest.raises(ValueError, match=rf"bad\.asf: line {k + 1}: direction needs 3 numbers"):
        read_asf(bad)
    bad.write_text(text.replace("dof rx ry rz", "dof rx ry rw", 1))
    with pytest.raises(ValueError, match=r"bad\.asf: line \d+: dof must list"):
        read_asf(bad)
    bad.write_text(text.split(":hierarchy")[0])
    with pytest.raises(ValueError, match=r"bad\.asf: missing :bonedata or :hierarchy"):
        read_asf(bad)
    amc = (tmp_path / "s.amc").read_text().splitlines()
    bad = tmp_path / "bad.amc"
    bad.write_text("\n".join(amc[:5] + ["lnose 1 2 3"] + amc[5:]))
    with pytest.raises(ValueError, match=r"bad\.amc: line 6: unknown bone 'lnose'"):
        parse_amc(bad, asf)
    k = next(i for i, ln in enumerate(amc) if ln.startswith("lfemur"))
    bad.write_text("\n".join(amc[:k] + ["lfemur 1 2"] + amc[k + 1:]))
    with pytest.raises(ValueError, match=rf"bad\.amc: line {k + 1}: bone 'lfemur' needs 3 numbers"):
        parse_amc(bad, asf)
    bad.write_text("\n".join(amc[:k] + amc[k + 1:]))
    with pytest.raises(ValueError, match=r"bad\.amc: line \d+: frame 1 lacks bones \['lfemur'\]"):
        parse_amc(bad, asf)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="no unique .asf"):
        read_motion(tmp_path / "sub" / "x.amc")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_asf_and_amc_only_raise_motion_file_errors(tmp_path, data):
    """Dropped, repeated, cut or junk lines in either file: a Motion, or a MotionFileError naming that file."""
    asf = skeleton()
    write_asf(tmp_path / "s.asf", asf)
    write_amc(tmp_path / "s.amc", asf, random_values(asf, frames=3))
    which = data.draw(st.sampled_from(["s.asf", "s.amc"]))
    lines = (tmp_path / which).read_text().splitlines()
    k = data.draw(st.integers(0, len(lines) - 1))
    op = data.draw(st.sampled_from(["drop", "dup", "junk", "cut"]))
    if op == "drop":
        lines = lines[:k] + lines[k + 1:]
    elif op == "dup":
        lines = lines[:k] + [lines[k]] + lines[k:]
    elif op == "junk":
        toks = lines[k].split() or [""]
        i = data.draw(st.integers(0, len(toks) - 1))
        toks[i] = data.draw(st.sampled_from(["root", "begin", "end", ":hierarchy", "nan", "1e999", "x", "", "-1",
                                             "lfemur", "dof", "7", ":units", "axis"]))
        lines[k] = " ".join(toks)
    else:
        lines = lines[:k]
    bad = tmp_path / f"m{which[-4:]}"
    bad.write_text("\n".join(lines))
    other = tmp_path / ("s.asf" if which == "s.amc" else "s.amc")
    amc, asf_path = (bad, other) if which == "s.amc" else (other, bad)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MotionWarning)
            m = read_amc(amc, asf_path)
    except MotionFileError as e:
        assert str(e).startswith(str(bad)) or str(e).startswith(str(other))
        assert e.path in (bad, other)
    else:
        assert np.isfinite(m.positions).all()


def test_cut_amc_keeps_complete_frames(tmp_path):
    asf = skeleton()
    write_asf(tmp_path / "s.asf", asf)
    write_amc(tmp_path / "s.amc", asf, random_values(asf, frames=3))
    lines = (tmp_path / "s.amc").read_text().splitlines()
    (tmp_path / "cut.amc").write_text("\n".join(lines[:-2]))
    with pytest.warns(MotionWarning, match=r"cut\.amc: line \d+: the last frame lacks bones"):
        assert read_amc(tmp_path / "cut.amc", tmp_path / "s.asf").num_frames == 2
    text = (tmp_path / "s.asf").read_text()
    (tmp_path / "dup.asf").write_text(text.replace("name lfemur", "name lhipjoint"))
    with pytest.raises(MotionFileError, match=r"dup\.asf: line \d+: bone name 'lhipjoint' is used twice"):
        read_asf(tmp_path / "dup.asf")
