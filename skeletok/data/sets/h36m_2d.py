"""VideoPose3D's 2D keypoint files (``positions_2d``): keypoint order, score channel, missed detections.

A 2D file (``data_2d_h36m_cpn_ft_h36m_dbb.npz`` or any file VideoPose3D's data scripts write) holds
``positions_2d``, a pickled dict subject -> action -> list of 4 arrays (one per camera, in
:data:`~skeletok.data.views.h36m_calibration.CAMERA_IDS` order), and ``metadata`` (the keypoint layout).
Each array is ``(t, 17, c)`` pixels; the channels are read as (:data:`SCORE_CHANNELS`):

- ``c = 2``: ``x, y``, no scores (VideoPose3D's CPN, Stacked Hourglass and ground-truth files, and the custom
  files of ``prepare_data_2d_custom.py``, which keep only ``x, y``): every keypoint gets score 1.
- ``c = 3``: ``x, y, score``: detectron2's ``pred_keypoints`` layout (the keypoint probability third), as a custom
  file keeps it when the score is not dropped.
- ``c = 4``: ``x, y, logit, prob``: Detectron's keypoint layout, which VideoPose3D's ``infer_video.py`` and
  ``infer_video_d2.py`` write (transposed to ``(17, 4)``; ``infer_video_d2`` fills the logit with zeros); the
  score is ``prob``.

Any other shape is refused, naming the file, the sequence, the shape and what is expected. A keypoint is a
**missed detection** when its ``x`` or ``y`` is NaN or infinite, or its score is not a finite number > 0
(detectors that report no keypoint write NaN, like VideoPose3D's decoder before its interpolation, or zero
coordinates with score 0, like OpenPose). Missed keypoints come back with NaN coordinates and score 0, so the
two always agree; scores are otherwise kept as the file has them (no rescaling: detectron2's are not confined to
[0, 1]). Shapes: ``t`` frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["LAYOUTS_2D", "SCORE_CHANNELS", "load_videopose3d_dict", "select_subjects", "split_scores",
           "load_h36m_2d"]

#: Channel count ``c`` of a ``(t, 17, c)`` 2D array -> (what the channels are, index of the score or ``None``).
SCORE_CHANNELS: dict[int, tuple[str, int | None]] = {
    2: ("x, y (no scores: all 1)", None),
    3: ("x, y, score", 2),
    4: ("x, y, logit, prob (Detectron; score = prob)", 3),
}


# VideoPose3D's 2D layouts (metadata "layout_name" -> its "keypoints_symmetry": left joints, right joints).
LAYOUTS_2D: dict[str, tuple[list[int], list[int]]] = {
    "h36m": ([4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]),
    "coco": ([1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]),
}
_COCO_NOTE = ("COCO-ordered keypoints converted to Human3.6M-17 order (skeletok.skeleton.coco17_to_h36m17): limbs "
              "and hips one to one; the joints COCO lacks are derived: pelvis = mid-hips, thorax = mid-shoulders, "
              "spine = mid(pelvis, thorax), neck_nose = nose, head = head top extrapolated from the eyes and ears")


def _layout_2d(path, metadata: dict, layout: str) -> str:
    """The keypoint order of a VideoPose3D 2D file: its metadata's, checked against ``layout``."""
    if layout not in ("auto", *LAYOUTS_2D):
        raise ValueError(f"layout must be 'auto', 'h36m' or 'coco', got {layout!r}")
    from skeletok.errors import KeypointFileError

    if not metadata:
        if layout == "auto":
            raise KeypointFileError(path, "has no 'metadata' (VideoPose3D writes layout_name, num_joints and "
                                    "keypoints_symmetry), so its keypoint order is unknown; pass the order: "
                                    "--layout-2d h36m or --layout-2d coco (layout_2d= in h36m_to_dataset)")
        return layout
    name = str(metadata.get("layout_name", "")).lower()
    joints = metadata.get("num_joints")
    symmetry = metadata.get("keypoints_symmetry")
    if joints is not None and int(joints) != 17:
        raise KeypointFileError(path, f"metadata says num_joints={joints}; Human3.6M-17 or COCO-17 keypoints are "
                                "needed (17 joints)")
    if name not in LAYOUTS_2D:
        raise KeypointFileError(path, f"metadata layout_name {metadata.get('layout_name')!r} is not a supported "
                                f"2D layout; supported: {', '.join(LAYOUTS_2D)} (VideoPose3D's h36m and coco)")
    if symmetry is not None:
        got = [[int(j) for j in side] for side in symmetry]
        if got != [list(side) for side in LAYOUTS_2D[name]]:
            other = [k for k, v in LAYOUTS_2D.items() if got == [list(side) for side in v]]
            said = f"the {other[0]} layout's" if other else "no known layout's"
            raise KeypointFileError(path, f"metadata contradicts itself: layout_name {name!r} but keypoints_symmetry "
                                    f"{got} is {said}; fix the file's metadata")
    if layout not in ("auto", name):
        raise KeypointFileError(path, f"metadata says the keypoints are in {name!r} order, but layout {layout!r} "
                                "was asked for; drop the option (the file's metadata decides)")
    return name


def load_videopose3d_dict(path, key: str) -> tuple[dict, np.lib.npyio.NpzFile]:
    """The pickled dict under ``key`` of a VideoPose3D ``.npz`` file, and the open file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file, when ``key`` is absent or does not hold a pickled dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Human3.6M file {str(path)!r} does not exist")
    npz = np.load(path, allow_pickle=True)
    if key not in npz.files:
        raise ValueError(f"{path}: expected key {key!r} (VideoPose3D format), found {npz.files}")
    value = npz[key]
    if value.dtype != object or value.shape != ():
        raise ValueError(f"{path}: key {key!r} must hold a pickled dict subject -> action -> array, got {value.dtype}")
    return value.item(), npz


def select_subjects(data: dict, subjects, path) -> list[str]:
    """The subjects to read of a VideoPose3D dict: ``subjects`` (all, sorted, when ``None``).

    Raises:
        ValueError: naming the file and the subjects it lacks.
    """
    chosen = sorted(data) if subjects is None else list(subjects)
    missing = [s for s in chosen if s not in data]
    if missing:
        raise ValueError(f"{path}: subjects {missing} not in the file, which has {sorted(data)}")
    return chosen


def split_scores(array, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates and scores of one ``(t, 17, c)`` 2D array, misses marked (module docstring).

    Args:
        array: ``(t, 17, c)`` with ``c`` in :data:`SCORE_CHANNELS`, pixels.
        where: the file and sequence, for messages.

    Returns:
        ``(xy, score)``: ``(t, 17, 2)`` float32 pixels, NaN at missed keypoints, and ``(t, 17)`` float32 scores,
        0 at missed keypoints, 1 elsewhere when the array has no score channel.

    Raises:
        ValueError: naming ``where``, for a shape other than ``(t, 17, c)`` with ``c`` in 2, 3, 4, or a
            non-numeric array.
    """
    try:
        array = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: must be a numeric (t, 17, 2|3|4) array, cannot be read as numbers "
                         f"({err})") from None
    expected = "; ".join(f"(t, 17, {c}) = {name}" for c, (name, _) in SCORE_CHANNELS.items())
    if array.ndim != 3 or array.shape[1] != 17 or array.shape[2] not in SCORE_CHANNELS:
        raise ValueError(f"{where}: has shape {array.shape}, expected one of {expected}")
    channel = SCORE_CHANNELS[array.shape[2]][1]
    xy = array[..., :2].copy()
    score = np.ones(array.shape[:2], np.float32) if channel is None else array[..., channel].copy()
    with np.errstate(invalid="ignore"):
        missed = ~np.isfinite(xy).all(-1) | ~(np.isfinite(score) & (score > 0))
    xy[missed] = np.nan
    score[missed] = 0.0
    return xy, score


def load_h36m_2d(path, subjects=None, *, layout: str = "auto", scores: bool = False):
    """Read ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` (or any VideoPose3D 2D file), in Human3.6M-17 order.

    The keypoint order comes from the file's ``metadata`` (VideoPose3D's ``layout_name``, ``num_joints``,
    ``keypoints_symmetry``, checked against each other): ``"h36m"`` (CPN, Stacked Hourglass, Detectron
    fine-tuned on Human3.6M) is read as is; ``"coco"`` (Detectron pretrained on COCO) is converted with
    :func:`skeletok.skeleton.coco17_to_h36m17`, which derives the five joints COCO lacks (pelvis = mid-hips,
    thorax = mid-shoulders, spine = mid(pelvis, thorax), neck_nose = nose, head = head top extrapolated from
    the eyes and ears; a derived joint's score is the least of its sources', so it is missed when one of them
    is). Any other layout is refused. The channels and missed keypoints are read as the module docstring says.

    Args:
        path: the ``.npz`` file.
        subjects: subjects to read (default all).
        layout: ``"auto"`` (the metadata decides; a file without metadata is refused), or ``"h36m"``/``"coco"``
            for a file without metadata (a file whose metadata says otherwise is refused).
        scores: also return the scores.

    Returns:
        ``(positions, metadata)``, or with ``scores`` ``(positions, scores, metadata)``: subject -> action ->
        list of 4 ``(t, 17, 2)`` float32 pixel arrays (camera order of
        :data:`~skeletok.data.views.h36m_calibration.CAMERA_IDS`, Human3.6M-17 joint order; NaN at missed
        keypoints), the same of ``(t, 17)`` float32 scores (1 without a score channel, 0 at misses), and the
        file's metadata dict plus ``"layout_read"`` (the order the file was in), ``"channels_read"`` (sorted
        channel descriptions of :data:`SCORE_CHANNELS` met), ``"keypoints"`` and ``"missed"`` (counts over the
        subjects read) and, after a conversion, ``"conversion"`` (what was done, in words).

    Raises:
        KeypointFileError: (a ``ValueError``) naming the file, for an unknown or self-contradicting layout, a
            joint count other than 17, or no metadata with ``layout="auto"``.
        ValueError: naming the file and the sequence, for a sequence that is not 4 arrays of a shape of
            :data:`SCORE_CHANNELS`.
    """
    from skeletok.skeleton import coco17_to_h36m17

    data, npz = load_videopose3d_dict(path, "positions_2d")
    metadata = dict(npz["metadata"].item()) if "metadata" in npz.files else {}
    order = _layout_2d(path, metadata, layout)
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    out_scores: dict[str, dict[str, list[np.ndarray]]] = {}
    channels, total, missed = set(), 0, 0
    for subject in select_subjects(data, subjects, path):
        out[subject], out_scores[subject] = {}, {}
        for action, views in data[subject].items():
            where = f"{path}: positions_2d[{subject!r}][{action!r}]"
            views = list(views) if isinstance(views, (list, tuple, np.ndarray)) else views
            if not isinstance(views, list) or len(views) != 4:
                got = f"{len(views)} arrays" if isinstance(views, list) else type(views).__name__
                raise ValueError(f"{where} must be a list of 4 arrays (one per camera), got {got}")
            read = [split_scores(v, f"{where}[{k}]") for k, v in enumerate(views)]
            channels.update(SCORE_CHANNELS[np.shape(v)[2]][0] for v in views)
            if order == "coco":
                read = [coco17_to_h36m17(xy, score) for xy, score in read]
                read = [(xy, np.where(np.isfinite(xy).all(-1), score, 0.0).astype(np.float32)) for xy, score in read]
            out[subject][action] = [xy for xy, _ in read]
            out_scores[subject][action] = [score for _, score in read]
            total += sum(score.size for _, score in read)
            missed += sum(int((score == 0).sum()) for _, score in read)
    metadata.update(layout_read=order, channels_read=sorted(channels), keypoints=total, missed=missed)
    if order == "coco":
        metadata["conversion"] = _COCO_NOTE
    return (out, out_scores, metadata) if scores else (out, metadata)
