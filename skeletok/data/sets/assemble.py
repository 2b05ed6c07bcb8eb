"""One dataset file's arrays from world-space levels and cameras: project every level through every camera (or take
the caller's projections), and gather the keys of the file format (:mod:`skeletok.data.sets.fileformat`,
``docs/concepts.md``). Used by the mocap builder (:mod:`skeletok.data.sets.build`) and the Human3.6M converter
(:mod:`skeletok.data.sets.h36m`).

Shapes: ``n`` frames, ``c`` cameras, ``j`` points of a level, ``s`` sequences, ``a`` actions.
"""

from __future__ import annotations

import numpy as np

from skeletok.data.views.cameras import Camera, cameras_to_arrays

__all__ = ["assemble_dataset"]


def assemble_dataset(*, world_sparse, world_dense, world_fine, sequence, sequence_names, parts_dense, parts_fine,
                     fine_to_dense, action, action_names, split, fps: float, cameras: list[Camera],
                     sequence_offset=None, det_sparse=None, det_score=None, projected=None, rig_shift=None,
                     extra=None) -> dict[str, np.ndarray]:
    """Project world levels through the cameras and gather every key of the dataset file.

    Args:
        world_sparse: ``(n, 17, 3)`` world metres.
        world_dense: ``(n, 48, 3)`` world metres (NaN where unknown).
        world_fine: ``(n, 96, 3)`` world metres (NaN where unknown).
        sequence: ``(n,)`` sequence id per frame.
        sequence_names: ``(s,)`` sequence names.
        parts_dense: ``(48,)`` part id of each dense point.
        parts_fine: ``(96,)`` part id of each fine point.
        fine_to_dense: ``(96,)`` dense cluster of each fine cluster.
        action: ``(n,)`` action id per frame.
        action_names: ``(a,)`` action names.
        split: ``(s,)`` per sequence or ``(n,)`` per frame, 0 train / 1 test.
        fps: frame rate.
        cameras: the ``c`` cameras.
        sequence_offset: optional ``(s, 3)`` recentring offsets (metres).
        det_sparse: optional ``(n, c, 17, 2)`` detected 2D pixels.
        det_score: optional ``(n, c, 17)`` scores of ``det_sparse`` (0 = missed; see
            :mod:`skeletok.data.sets.fileformat`); only with ``det_sparse``.
        projected: ``pix_sparse``, ``pix_dense``, ``pix_fine`` and ``cam_sparse`` computed by the
            caller (cameras that differ per sequence); projected through ``cameras`` when ``None``.
        rig_shift: optional ``(n, 3)`` per-frame translation of the whole rig (metres,
            :mod:`skeletok.data.views.placement`): frame ``i`` is filmed by the cameras moved by ``rig_shift[i]``;
            stored under the same key.
        extra: more optional keys of :mod:`skeletok.data.sets.fileformat` (e.g. ``sequence_source``).

    Returns:
        The arrays of ``docs/concepts.md`` (validated when saved).
    """
    world_sparse = np.asarray(world_sparse, dtype=np.float64)
    sequence = np.asarray(sequence, dtype=np.int64)
    split = np.asarray(split)
    if len(split) == len(sequence_names) and len(split) != len(sequence):
        split = split[sequence]
    out = {"world_sparse": world_sparse, "world_dense": world_dense, "world_fine": world_fine}
    out.update(cameras_to_arrays(cameras))
    if projected is None and rig_shift is not None:  # a rig moved by s films X as the unmoved rig films X - s
        rig_shift = np.asarray(rig_shift, dtype=np.float64)
        if rig_shift.shape != (len(world_sparse), 3):
            raise ValueError(f"rig_shift must have shape ({len(world_sparse)}, 3), got {rig_shift.shape}")
        seen = {k: np.asarray(out[f"world_{k}"], dtype=np.float64) - rig_shift[:, None] for k in ("sparse", "dense",
                                                                                                 "fine")}
        out["rig_shift"] = rig_shift
    else:
        seen = {k: out[f"world_{k}"] for k in ("sparse", "dense", "fine")}
    if projected is None:
        for level in ("sparse", "dense", "fine"):
            out[f"pix_{level}"] = np.stack([cam.project(seen[level]) for cam in cameras], axis=1)
        cam3d = np.stack([cam.to_camera(seen["sparse"]) for cam in cameras], axis=1)
        out["cam_sparse"] = cam3d - cam3d[:, :, :1]
    else:
        out.update({k: projected[k] for k in ("pix_sparse", "pix_dense", "pix_fine", "cam_sparse")})
    out.update(
        parts_dense=np.asarray(parts_dense), parts_fine=np.asarray(parts_fine),
        fine_to_dense=np.asarray(fine_to_dense), action=np.asarray(action),
        action_names=np.asarray(list(action_names), dtype=str), sequence=sequence,
        sequence_names=np.asarray(list(sequence_names), dtype=str), split=split.astype(np.int8),
        fps=np.asarray(float(fps)),
    )
    if sequence_offset is not None:
        out["sequence_offset"] = np.asarray(sequence_offset)
    if det_sparse is not None:
        out["det_sparse"] = np.asarray(det_sparse)
    if det_score is not None:
        out["det_score"] = np.asarray(det_score)
    out.update(extra or {})
    return out
