"""Human3.6M for users who have it: VideoPose3D-format files, their own camera calibration, SMPL hierarchy.

Files (as prepared by VideoPose3D's ``prepare_data_h36m.py``, read with ``allow_pickle``):

- ``data_3d_h36m.npz``: key ``positions_3d``, a dict subject -> action -> ``(t, 32, 3)`` world
  metres (Z-up); :data:`H36M_32_TO_17` selects the 17 joints of ``H36M_17``.
- ``data_2d_h36m_cpn_ft_h36m_dbb.npz``: key ``positions_2d``, subject -> action -> list of 4
  ``(t, 17, 2)`` pixel arrays (one per camera, in :data:`CAMERA_IDS` order), and ``metadata``; other detectors'
  files may carry scores, ``(t, 17, 3)`` or ``(t, 17, 4)``, and missed keypoints
  (:mod:`skeletok.data.sets.h36m_2d` reads them; :func:`load_h36m_2d` is importable from here too).

Cameras come from the calibration file of the user's Human3.6M copy (skeletok ships none):
:func:`~skeletok.data.views.h36m_calibration.load_h36m_cameras` reads VideoPose3D's layout or the download
tools' ``camera-parameters.json`` (see :mod:`skeletok.data.views.h36m_calibration`). Projection uses the
Human3.6M distortion model (:meth:`skeletok.data.views.cameras.Camera.project_camera`).

Dense/fine ground truth needs body meshes, which Human3.6M does not ship. By default
(``levels_from="body"``) skeletok's committed CC0 body is retargeted onto each frame's Human3.6M joints
(:mod:`skeletok.data.sets.h36m_body`: :func:`fit_body_to_h36m` with the joint mapping :data:`H36M_MAPPING`,
one body shape and size per subject from :func:`choose_body_shape`), and the 48/96 levels are taken from the
posed mesh; the fit (mm between the body's 17 joints and the file's) is recorded per sequence. Those names, and
the 32-joint skeleton :data:`H36M_32_NAMES`/:data:`H36M_32_PARENTS`/:data:`H36M_32_TO_17`, are importable from
here too. Users who have SMPL fits supply the vertices instead (``levels_from="smpl"``: a dict, or the
file of ``skeletok data from-h36m --smpl`` described in :mod:`skeletok.data.sets.h36m_smpl`) and
:func:`hierarchy_from_smpl` coarsens them with the same HEM coarsening as skeletok's body
(:func:`skeletok.data.body.hem.coarsen_mesh`). ``levels_from="none"`` writes NaN dense/fine points (the
Dataset marks them invisible; only the sparse-only lifter trains on such a file). Without SMPL the file
records the committed body's part ids and nesting, so models trained on skeletok's default data read it
as is.

Shapes: ``t`` frames, ``v`` vertices, ``f`` faces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.data.sets.actions import action_from_name
from skeletok.data.sets.assemble import assemble_dataset
from skeletok.data.sets.fileformat import save_dataset
from skeletok.data.sets.h36m_2d import LAYOUTS_2D, load_h36m_2d, load_videopose3d_dict, select_subjects
from skeletok.data.sets.h36m_smpl import SmplVertices
from skeletok.data.views.h36m_calibration import CAMERA_IDS, h36m_cameras, load_h36m_cameras, resolve_calibration
from skeletok.data.body.hem import MeshHierarchy, coarsen_mesh
from skeletok.data.sets.h36m_body import (
    H36M_32_NAMES,
    H36M_32_PARENTS,
    H36M_32_TO_17,
    H36M_MAPPING,
    BodyFit,
    body_and_levels,
    choose_body_shape,
    fit_body_to_h36m,
    to_joints17,
)
from skeletok.skeleton import H36M_17

__all__ = [
    "H36M_32_TO_17",
    "H36M_32_NAMES",
    "H36M_32_PARENTS",
    "H36M_MAPPING",
    "BodyFit",
    "choose_body_shape",
    "fit_body_to_h36m",
    "CAMERA_IDS",
    "TRAIN_SUBJECTS",
    "TEST_SUBJECTS",
    "H36M_ACTIONS",
    "h36m_action",
    "h36m_cameras",
    "load_h36m_cameras",
    "load_h36m_3d",
    "load_h36m_2d",
    "LAYOUTS_2D",
    "SmplLevels",
    "hierarchy_from_smpl",
    "h36m_to_dataset",
]

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
# The 15 Human3.6M actions (the per-action columns of the usual result tables).
H36M_ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
                "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")
_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}  # S1's spellings


def h36m_action(name: str) -> str:
    """The Human3.6M action of a sequence name: ``"Walking 1"`` -> ``"Walking"``, ``"TakingPhoto"`` -> ``"Photo"``.

    Names outside the 15 actions fall back to :func:`~skeletok.data.sets.actions.action_from_name`.
    """
    base = re.sub(r"\s*\d+$", "", str(name).strip())
    base = _ACTION_ALIASES.get(base, base)
    return base if base in H36M_ACTIONS else action_from_name(name)


def load_h36m_3d(path, subjects=None, *, all_joints: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Read ``data_3d_h36m.npz``: subject -> action -> ``(t, 17, 3)`` float32 world metres.

    Accepts ``(t, 32, 3)`` (the 17 joints are selected) or already-reduced ``(t, 17, 3)``. With
    ``all_joints`` the arrays are returned as the file holds them (32 or 17 joints, :data:`H36M_32_NAMES`
    or ``H36M_17`` order).

    Raises:
        ValueError: naming the file and the sequence, for arrays of another shape or with NaN/inf.
    """
    data, _ = load_videopose3d_dict(path, "positions_3d")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject in select_subjects(data, subjects, path):
        out[subject] = {}
        for action, pos in data[subject].items():
            pos = np.asarray(pos, dtype=np.float32)
            if pos.ndim != 3 or pos.shape[1:] not in ((32, 3), (17, 3)):
                raise ValueError(f"{path}: positions_3d[{subject!r}][{action!r}] must be (t, 32, 3), got {pos.shape}")
            if not np.isfinite(pos).all():
                raise ValueError(f"{path}: positions_3d[{subject!r}][{action!r}] holds "
                                 f"{int((~np.isfinite(pos)).sum())} NaN/inf values; Human3.6M's joints are all known")
            out[subject][action] = pos if all_joints or pos.shape[1] == 17 else pos[:, list(H36M_32_TO_17)]
    return out


@dataclass
class SmplLevels:
    """Dense/fine points of SMPL meshes: ``dense (t, 48, 3)``, ``fine (t, 96, 3)``, the
    ``fine_to_dense (96,)`` nesting, part ids ``parts_dense (48,)``/``parts_fine (96,)`` (``None``
    without joints) and the reusable :class:`~skeletok.data.body.hem.MeshHierarchy`."""

    dense: np.ndarray
    fine: np.ndarray
    fine_to_dense: np.ndarray
    parts_dense: np.ndarray | None
    parts_fine: np.ndarray | None
    hierarchy: MeshHierarchy


def _nearest_bone(points, joints) -> np.ndarray:
    """Part id (index into ``H36M_17.parts``) of the bone segment nearest to each point."""
    a = joints[[p for p, _ in H36M_17.parts]]  # (p, 3)
    b = joints[[c for _, c in H36M_17.parts]]
    ab = b - a
    s = np.clip(((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    dist = np.linalg.norm(points[:, None] - (a + s[..., None] * ab), axis=-1)
    return dist.argmin(-1).astype(np.int64)


def hierarchy_from_smpl(vertices, faces, *, joints=None, hierarchy: MeshHierarchy | None = None) -> SmplLevels:
    """Coarsen SMPL meshes into the 96 fine and 48 dense cluster means.

    Args:
        vertices: ``(t, v, 3)`` posed vertices (``v = 6890`` for SMPL), metres.
        faces: ``(f, 3)`` triangles.
        joints: optional ``(t, 17, 3)`` Human3.6M joints of the same frames; parts are then the
            nearest bone (segment) of each cluster in the first frame, since SMPL fits come
            without H36M-bone skinning weights.
        hierarchy: reuse a hierarchy from an earlier call (the mesh topology is fixed).

    Returns:
        :class:`SmplLevels`.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 3 or vertices.shape[-1] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must have shape (t, v, 3) with t >= 1, got {vertices.shape}")
    if hierarchy is None:
        hierarchy = coarsen_mesh(vertices[0], faces, sizes=(96, 48))
    fine, dense = hierarchy.points(vertices)
    parts_dense = parts_fine = None
    if joints is not None:
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape != (len(vertices), 17, 3):
            raise ValueError(f"joints must have shape ({len(vertices)}, 17, 3), got {joints.shape}")
        parts_fine = _nearest_bone(fine[0], joints[0])
        parts_dense = _nearest_bone(dense[0], joints[0])
    return SmplLevels(dense, fine, hierarchy.assignments[1].copy(), parts_dense, parts_fine, hierarchy)


def _fit_stats(error_mm: np.ndarray) -> dict:
    """Frames and mean / 95th percentile / max of per-joint fit errors ``(t, 17)`` in mm."""
    return {"frames": int(len(error_mm)), "mean_mm": float(error_mm.mean()),
            "p95_mm": float(np.percentile(error_mm, 95)), "max_mm": float(error_mm.max())}


def _fill_missed(pix: np.ndarray, size) -> np.ndarray:
    """``(t, 17, 2)`` pixels with NaN at missed keypoints -> finite: each missed keypoint on the mean of its
    frame's detected ones, or on the image centre (``size`` = width, height) when the frame has none."""
    missed = ~np.isfinite(pix).all(-1)  # (t, 17)
    if not missed.any():
        return pix
    found = (~missed).sum(-1, keepdims=True)  # (t, 1)
    mean = np.where(missed[..., None], 0.0, pix).sum(1) / np.maximum(found, 1)  # (t, 2)
    mean = np.where(found > 0, mean, 0.5 * np.asarray(size, np.float32))
    return np.where(missed[..., None], mean[:, None], pix).astype(np.float32)


def _notes_2d(meta: dict) -> list[str]:
    """What was done to a 2D file, in words: its channels, its missed keypoints, a layout conversion."""
    if not meta:
        return []
    share = meta["missed"] / max(meta["keypoints"], 1)
    notes = [f"2D read as {' and '.join(meta['channels_read'])}; {meta['missed']} of {meta['keypoints']} "
             f"keypoints ({100 * share:.2f}%) missed (NaN/inf coordinates or score <= 0): stored with det_score 0, "
             "hidden from the models under inputs=detections"]
    return notes + ([meta["conversion"]] if "conversion" in meta else [])


def h36m_to_dataset(data_3d, *, cameras, out, data_2d=None, smpl_vertices=None, smpl_faces=None, subjects=None,
                    test_subjects=TEST_SUBJECTS, stride: int = 1, fps: float = 50.0, levels_from: str | None = None,
                    layout_2d: str = "auto", report: dict | None = None) -> Path:
    """Convert Human3.6M (VideoPose3D files) into a skeletok dataset file.

    One sequence per (subject, action), named ``"S1/Walking 1"``; actions are the 15 Human3.6M
    actions (:func:`h36m_action`); split by subject (``test_subjects`` are test). The file takes
    about 8 KB per frame (all four views of 161 points): all of Human3.6M at ``stride=1`` is
    about 7.5 GB, so convert the training and test subjects into separate files (``subjects``)
    or subsample the training frames (``stride``). 2D is projected with each
    subject's own calibrated cameras; ``cam_R``/``cam_t`` hold the first subject's extrinsics and
    ``sequence_cam_R (s, 4, 3, 3)``/``sequence_cam_t (s, 4, 3)`` every sequence's own.

    Args:
        data_3d: path of ``data_3d_h36m.npz``.
        cameras: the Human3.6M camera calibration: a file path in either layout of
            :mod:`~skeletok.data.views.h36m_calibration` (skeletok ships none), or the result of
            :func:`~skeletok.data.views.h36m_calibration.load_h36m_cameras` (or its parsed JSON dict).
        out: output ``.npz`` path.
        data_2d: optional path of a 2D detection file (e.g. CPN); stored as ``det_sparse`` in Human3.6M-17
            order (:func:`load_h36m_2d` reads the file's layout metadata; COCO order is converted) with its
            scores as ``det_score`` (1 where the file has none, 0 at missed keypoints, whose ``det_sparse`` holds
            a placeholder: the mean of the view's detected keypoints in that frame, or the image centre when
            every keypoint was missed). Detections longer than the 3D are cut to its length (as VideoPose3D
            does); shorter ones are refused.
        layout_2d: keypoint order of ``data_2d`` when the file has no metadata (``"h36m"`` or ``"coco"``);
            ``"auto"`` reads the metadata.
        smpl_vertices: optional dict subject -> action -> ``(t, v, 3)`` SMPL vertices in the
            same world frame and units (metres) as ``data_3d``, with its frame count ``t`` (before ``stride``),
            for every sequence converted; with ``smpl_faces`` they give dense/fine (``levels_from="smpl"``).
            Or the path of a SMPL file (``skeletok data from-h36m --smpl``: ``faces`` and one array per
            ``"<subject>/<action>"``, :mod:`skeletok.data.sets.h36m_smpl`), read one sequence at a time.
        smpl_faces: ``(f, 3)`` triangles of the SMPL meshes (not with a file, which holds them).
        subjects: subjects to convert (default: all in the file with extrinsics in ``cameras``).
        test_subjects: subjects marked test.
        stride: keep every ``stride``-th frame.
        fps: frame rate of the source (50 for Human3.6M); the file records ``fps / stride``.
        levels_from: where the dense/fine levels come from: ``"body"`` (skeletok's body retargeted onto the
            joints, :func:`fit_body_to_h36m`; one shape and size per subject, :func:`choose_body_shape`),
            ``"smpl"`` (the SMPL meshes given) or ``"none"`` (NaN). Default: ``"smpl"`` when meshes are
            given, else ``"body"``. With ``"body"`` the file records ``sequence_fit_mm (s,)``, the mean
            distance (mm) between the body's 17 joints and the file's over each sequence's frames.
        report: optional dict, filled with what was done: ``levels_from`` (for ``"smpl"``, ``"smpl"``:
            ``{"source", "vertices", "faces"}``, the file or ``"smpl_vertices"`` and the mesh's sizes), and for ``"body"`` per subject
            ``{"shape", "scale", "frames", "mean_mm", "p95_mm", "max_mm"}`` under ``"fit"`` and the
            same statistics over all frames under ``"fit_all"``; ``"trimmed_2d"``, the sequences whose 2D
            detections were longer than the 3D and cut to its length (as VideoPose3D does); ``"notes_2d"``,
            what was done to the 2D file in words (its channels and scores, missed keypoints, a conversion).

    Raises:
        ValueError: naming the file for a bad input (a missing subject, frame counts that differ between
            3D and 2D, an unknown layout of the 2D file; SMPL vertices missing for a sequence, of another
            shape or frame count than the 3D, with NaN, or off the joints) and for a bad ``levels_from``.
        FileNotFoundError: for a missing input file.
    """
    if isinstance(smpl_vertices, (str, Path)):  # a SMPL file (skeletok.data.sets.h36m_smpl): faces inside
        if smpl_faces is not None:
            raise ValueError("smpl_faces must not be given with a SMPL file, which holds its own 'faces'")
        smpl_vertices = SmplVertices.open(smpl_vertices)
        smpl_faces = smpl_vertices.faces
    if levels_from is None:
        levels_from = "smpl" if smpl_vertices is not None else "body"
    if levels_from not in ("body", "smpl", "none"):
        raise ValueError(f"levels_from must be 'body', 'smpl' or 'none', got {levels_from!r}")
    if levels_from == "smpl" and smpl_vertices is None:
        raise ValueError("levels_from='smpl' needs smpl_vertices and smpl_faces (or levels_from='body': skeletok's "
                         "body retargeted onto the joints)")
    if levels_from != "smpl" and smpl_vertices is not None:
        raise ValueError(f"smpl_vertices were given but levels_from={levels_from!r}; pass levels_from='smpl'")
    if int(stride) < 1:
        raise ValueError(f"stride must be a positive integer, got {stride}")
    if (smpl_vertices is None) != (smpl_faces is None):
        raise ValueError("smpl_vertices and smpl_faces must be given together")
    calibration, _ = resolve_calibration(cameras)
    known = set(calibration)
    pos3d = load_h36m_3d(data_3d, subjects, all_joints=True)
    pos3d = {s: v for s, v in pos3d.items() if s in known or subjects is not None}
    if smpl_vertices is not None:
        if not isinstance(smpl_vertices, SmplVertices):
            smpl_vertices = SmplVertices.from_dict(smpl_vertices, smpl_faces)
        frames = {f"{s}/{a}": len(p) for s in sorted(pos3d) for a, p in sorted(pos3d[s].items())}
        n_vertices = smpl_vertices.check(frames, data_3d)
    if levels_from == "body":
        body, body_levels = body_and_levels(None, None)
    fits: dict[str, list[np.ndarray]] = {}
    fit_info: dict[str, dict] = {}
    seq_fit, trimmed = [], []
    det, det_scores, det_meta = (load_h36m_2d(data_2d, list(pos3d), layout=layout_2d, scores=True)
                                 if data_2d is not None else (None, None, {}))
    world, dense, fine, det_list, score_list, seq, names, labels, seq_split, cams_R, cams_t = (
        [] for _ in range(11))
    projected = {"pix_sparse": [], "pix_dense": [], "pix_fine": [], "cam_sparse": []}
    hierarchy, parts = None, (None, None)
    for subject in sorted(pos3d):
        cams = h36m_cameras(subject, calibration=calibration)
        if levels_from == "body":  # one shape and size per subject, from all its frames
            frames = np.concatenate([to_joints17(p[::stride]) for p in pos3d[subject].values()])
            shape, scale = choose_body_shape(frames, body=body, levels=body_levels)
            fit_info[subject] = {"shape": shape, "scale": scale}
        for action in sorted(pos3d[subject]):
            full = pos3d[subject][action]
            pos = to_joints17(full)
            t = len(pos)
            if det is not None:
                if action not in det[subject]:
                    raise ValueError(f"{data_2d}: no 2D for {subject}/{action}, present in {data_3d}")
                lengths = [len(v) for v in det[subject][action]]
                if min(lengths) < t:
                    raise ValueError(f"{data_2d}: {subject}/{action} has {lengths} 2D frames (cameras "
                                     f"{', '.join(CAMERA_IDS)}) but {data_3d} has {t} 3D frames; the 2D file must "
                                     "cover every 3D frame (VideoPose3D's files do: pass the 2D file made from the "
                                     "same Human3.6M release, or convert without --data-2d)")
                if max(lengths) > t:  # VideoPose3D's rule: longer detections are cut to the mocap's length
                    trimmed.append(f"{subject}/{action}: 2D {max(lengths)} -> {t} frames")
                det_list.append(np.stack([_fill_missed(v[:t:stride], c.size) for v, c in
                                          zip(det[subject][action], cams)], axis=1))
                score_list.append(np.stack([v[:t:stride] for v in det_scores[subject][action]], axis=1))
            if smpl_vertices is not None:
                verts = smpl_vertices.load(f"{subject}/{action}", pos)[::stride]
                lv = hierarchy_from_smpl(verts, smpl_vertices.faces, joints=pos[:t:stride], hierarchy=hierarchy)
                hierarchy, parts = lv.hierarchy, parts if parts[0] is not None else (lv.parts_dense, lv.parts_fine)
                dense.append(lv.dense)
                fine.append(lv.fine)
            elif levels_from == "body":
                fit = fit_body_to_h36m(full[:t:stride], body=body, levels=body_levels, shape=shape, scale=scale,
                                       name=f"{data_3d}: {subject}/{action}")
                dense.append(fit.dense)
                fine.append(fit.fine)
                fits.setdefault(subject, []).append(fit.error_mm)
                seq_fit.append(float(fit.error_mm.mean()))
            else:
                dense.append(np.full((len(pos[:t:stride]), 48, 3), np.nan))
                fine.append(np.full((len(pos[:t:stride]), 96, 3), np.nan))
            world.append(pos[:t:stride])
            for level, points in (("sparse", world[-1]), ("dense", dense[-1]), ("fine", fine[-1])):
                projected[f"pix_{level}"].append(np.stack([c.project(points) for c in cams], axis=1))
            cam3d = np.stack([c.to_camera(world[-1]) for c in cams], axis=1)
            projected["cam_sparse"].append(cam3d - cam3d[:, :, :1])
            seq.append(np.full(len(world[-1]), len(names)))
            names.append(f"{subject}/{action}")
            labels.append(h36m_action(action))
            seq_split.append(1 if subject in test_subjects else 0)
            cams_R.append(np.stack([c.R for c in cams]))
            cams_t.append(np.stack([c.t for c in cams]))
    if not names:
        raise ValueError(f"{data_3d}: no sequences to convert for subjects {subjects}")
    if hierarchy is None:  # no meshes: record the committed body's parts, so models trained on it match
        if levels_from != "body":
            body, body_levels = body_and_levels(None, None)
        parts, fine_to_dense = (body_levels.parts_dense, body_levels.parts_fine), body_levels.fine_to_dense
    else:
        fine_to_dense = hierarchy.assignments[1]
    if report is not None:
        report["levels_from"] = levels_from
        if smpl_vertices is not None:
            report["smpl"] = {"source": smpl_vertices.where, "vertices": n_vertices,
                              "faces": len(smpl_vertices.faces)}
        report["trimmed_2d"] = trimmed
        report["notes_2d"] = _notes_2d(det_meta)
        if fits:
            report["fit"] = {s: {**fit_info[s], **_fit_stats(np.concatenate(e))} for s, e in fits.items()}
            report["fit_all"] = _fit_stats(np.concatenate([e for errs in fits.values() for e in errs]))
    action_names = sorted(set(labels))
    seq = np.concatenate(seq)
    arrays = assemble_dataset(
        world_sparse=np.concatenate(world), world_dense=np.concatenate(dense), world_fine=np.concatenate(fine),
        sequence=seq, sequence_names=names,
        parts_dense=parts[0], parts_fine=parts[1], fine_to_dense=fine_to_dense,
        action=np.array([action_names.index(a) for a in labels])[seq], action_names=action_names,
        split=np.array(seq_split), fps=fps / stride, cameras=calibration[sorted(pos3d)[0]],
        det_sparse=np.concatenate(det_list) if det is not None else None,
        det_score=np.concatenate(score_list) if det is not None else None,
        projected={k: np.concatenate(v) for k, v in projected.items()},
        extra={"sequence_cam_R": np.stack(cams_R), "sequence_cam_t": np.stack(cams_t),
               **({"sequence_fit_mm": np.asarray(seq_fit)} if seq_fit else {})},
    )
    return save_dataset(arrays, out)
