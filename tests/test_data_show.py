"""posed_mesh rebuilds the mesh of the right source frame, also in files built with max_frames and in the mirrored
and resized training variants."""

import numpy as np
import pytest

from skeletok.data.body.levels import build_levels
from skeletok.data.body.model import BodyModel
from skeletok.data.sets.build import RIG_TARGET, build_dataset
from skeletok.data.sets.fileformat import load_dataset, save_dataset
from skeletok.data.sets.show import posed_mesh

TAKES = ("deepmimic/crawl", "deepmimic/getup_facedown")
CAP = 7


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from skeletok.data.motion.assets import load_motion_assets

    body = BodyModel.load()
    levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                          body.parents, body.rest_joints[0])
    motions = [m for m in load_motion_assets() if m.name in TAKES]
    root = tmp_path_factory.mktemp("show")
    kw = dict(body=body, levels=levels, test_sequences=[TAKES[1]], near_duplicate_m=None, placement="fixed",
              mirror=True, shapes_per_take=2, scale_range=(0.9, 1.1), sources=["skeletok:motion_assets"] * 2,
              progress=False)
    capped = load_dataset(build_dataset(motions, out=root / "capped.npz", max_frames=CAP, **kw))
    full = load_dataset(build_dataset(motions, out=root / "full.npz", **kw))
    return body, levels, capped, full


def _unplace(verts, d, s):
    """The retargeted mesh before the builder's shift and resizing (undoes sequence_offset and sequence_scale)."""
    anchor = np.array([RIG_TARGET[0], RIG_TARGET[1], 0.0])
    scale = float(d["sequence_scale"][s]) if "sequence_scale" in d else 1.0
    return (verts - anchor) / scale + anchor - d["sequence_offset"][s]


def test_capped_file_poses_the_source_frame(builds):
    """Row i of a capped file is frame idx[i] of its take (evenly spaced), not frame i: its mesh is the one the
    uncapped build has at that frame, for the plain sequence and for the mirrored / resized variants."""
    body, _, capped, full = builds
    assert list(capped["sequence_names"]) == list(full["sequence_names"])
    assert len(capped["sequence_names"]) == 5  # four variants of the training take, one of the test take
    for s in range(len(capped["sequence_names"])):
        rows_c = np.flatnonzero(capped["sequence"] == s)
        rows_f = np.flatnonzero(full["sequence"] == s)
        assert len(rows_c) == CAP < len(rows_f)
        idx = np.unique(np.linspace(0, len(rows_f) - 1, CAP).round().astype(np.int64))
        for local in (1, CAP - 2):
            got = _unplace(posed_mesh(capped, int(rows_c[local]), body)[0], capped, s)
            want = _unplace(posed_mesh(full, int(rows_f[idx[local]]), body)[0], full, s)
            np.testing.assert_allclose(got, want, atol=1e-4, err_msg=str(capped["sequence_names"][s]))


def test_posed_mesh_gives_back_the_stored_points(builds):
    """The rebuilt mesh of every sequence (plain, mirrored, resized) gives back the stored fine and dense points."""
    body, levels, capped, _ = builds
    for s in range(len(capped["sequence_names"])):
        frame = int(np.flatnonzero(capped["sequence"] == s)[3])
        fine, dense = levels.hierarchy.points(posed_mesh(capped, frame, body)[0][None])
        np.testing.assert_allclose(fine[0], capped["world_fine"][frame], atol=1e-4)
        np.testing.assert_allclose(dense[0], capped["world_dense"][frame], atol=1e-4)


def test_old_files_without_source_frame(builds, tmp_path):
    """A file written before source_frame existed still shows uncapped plain sequences, and says why it cannot
    show a capped one."""
    body, _, capped, full = builds
    strip = ("source_frame", "sequence_mirrored", "sequence_scale", "sequence_root_scale")
    old_full = load_dataset(save_dataset({k: v for k, v in full.items() if k not in strip}, tmp_path / "f.npz"))
    old_capped = load_dataset(save_dataset({k: v for k, v in capped.items() if k not in strip}, tmp_path / "c.npz"))
    test_seq = int(np.flatnonzero(full["sequence_names"] == TAKES[1])[0])
    frame = int(np.flatnonzero(full["sequence"] == test_seq)[5])
    np.testing.assert_allclose(posed_mesh(old_full, frame, body)[0], posed_mesh(full, frame, body)[0], atol=1e-4)
    frame = int(np.flatnonzero(capped["sequence"] == test_seq)[5])
    with pytest.raises(ValueError, match="source_frame"):
        posed_mesh(old_capped, frame, body)
    variant = int(np.flatnonzero(full["sequence"] == 1)[0])  # the mirrored variant of the training take
    with pytest.raises(ValueError, match="variant"):
        posed_mesh(old_full, variant, body)
