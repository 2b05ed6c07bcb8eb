"""``HierarchicalPoseDataset``: (frame, camera) pairs of a dataset file as dicts of tensors.

Each item (``docs/concepts.md``):

| key | shape | dtype | meaning |
|---|---|---|---|
| ``sparse_2d`` | ``(17, 2)`` | float32 | normalised 2D input, after detector noise (if any) |
| ``sparse_visible`` | ``(17,)`` | bool | visibility after occlusion and, with detections, the detector's misses (``True`` = visible) |
| ``sparse_2d_clean`` | ``(17, 2)`` | float32 | normalised projected 2D, before noise and occlusion |
| ``dense_2d``, ``fine_2d`` | ``(48, 2)``, ``(96, 2)`` | float32 | normalised projected 2D |
| ``dense_visible``, ``fine_visible`` | ``(48,)``, ``(96,)`` | bool | all ``True`` (``False`` only where a file has no dense/fine ground truth) |
| ``sparse_3d`` | ``(17, 3)`` | float32 | camera frame, root-relative, metres |
| ``dense_3d``, ``fine_3d`` | ``(48, 3)``, ``(96, 3)`` | float32 | only with ``levels_3d=True``: the same for the dense and fine points (0 where unknown) |
| ``action``, ``sequence``, ``camera``, ``frame`` | ``()`` | int64 | labels and provenance |

Normalised 2D is ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w`` (pixels, image width ``w``,
height ``h``). Hidden joints keep their coordinates (never zero-filled); models must use the
mask. Points a file marks unknown (NaN, Human3.6M without SMPL) come out as 0 with visibility
``False``.

With ``use_detections`` a keypoint the detector missed (``det_score`` 0 in the file) or scored below
``det_min_score`` is hidden before any occlusion (occlusion only hides more: hidden = missed, low-scored or
occluded); its ``sparse_2d`` is the file's finite placeholder, never NaN. A frame whose keypoints were all
missed is an item with nothing visible, as a fully masked one is.

Occlusion randomness is drawn from ``numpy.random.default_rng((seed, epoch, index))``: the same
index in the same epoch always gives the same occlusion, in the main process or in any
DataLoader worker. Call :meth:`HierarchicalPoseDataset.set_epoch` before each epoch (before
iterators are created; persistent workers keep the epoch they were started with).

The DataLoader fetches whole batches through ``__getitems__`` (occlusion vectorised over the
batch; each item still drawn from its own generator, so batched and single items agree).
Wrappers around this Dataset should forward ``__getitems__`` to keep that speed.

Viewpoint augmentation (``random_views=p``): a fraction ``p`` of the items (``True`` = all) is filmed by a
random camera of its own (the ranges of :func:`~skeletok.data.views.cameras.random_cameras`: any azimuth, -5 to 25 degrees
elevation, 3.5-6.5 m, focal 1,000-1,300 px, 1,000 x 1,000 images: Human3.6M-like heights, distances
and focal lengths) looking at the frame's root, moved by up to 0.5 m horizontally, at 0.9 m height, so the
subject stays in view whatever the take's length. Which items, and their cameras, are drawn from
``(seed, index)`` only: the same item keeps its camera in every epoch (precomputed targets such as tokens
stay valid), while its occlusion changes with the epoch. All 2D and ``sparse_3d`` then come from that
camera (``camera`` is ``-1``). Detections cannot follow a new camera, so it excludes ``use_detections``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from skeletok.data.views.cameras import normalize_screen
from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset, split_names, validate_dataset
from skeletok.data.views.occlusion import Occlusion

__all__ = ["HierarchicalPoseDataset"]

SPLITS = (*SPLIT_CODES, "all")
_VIEW_SIZE = 1000.0  # width and height (pixels) of the random views' images


def _tensor(array: np.ndarray) -> torch.Tensor:
    """``(n', c', ...)`` -> a contiguous ``(n' * c', ...)`` tensor whose row ``f * c' + c`` is item ``(f, c)``
    (rows are gathered with ``index_select``, far faster than advanced indexing on CPU)."""
    return torch.from_numpy(np.ascontiguousarray(array.reshape((-1,) + array.shape[2:])))


class HierarchicalPoseDataset(Dataset):
    """The hierarchical pose dataset over (frame, camera) pairs.

    Args:
        data: a dataset file path (``.npz`` of ``docs/concepts.md``) or a dict of its arrays.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (codes in
            :data:`~skeletok.data.sets.fileformat.SPLIT_CODES`).
        cameras: camera indices to use (``None``: all cameras of the file).
        occlusion: an :class:`~skeletok.data.views.occlusion.Occlusion` applied to ``sparse_2d`` /
            ``sparse_visible``; ``None`` for none.
        seed: seeds the occlusion randomness.
        use_detections: take ``sparse_2d`` from the file's ``det_sparse`` (e.g. CPN detections)
            instead of the projected ground truth; missed keypoints are hidden (module docstring).
        det_min_score: with ``use_detections``, detections scoring below this are hidden too (a file without
            ``det_score`` scores every detection 1); 0 hides the misses only.
        random_views: fraction of items filmed from a random camera of their own, in [0, 1] (``True`` = 1;
            see the module docstring).

    Raises:
        FileNotFoundError: if ``data`` is a missing path.
        ValueError: for an invalid file, split, camera index or an empty selection.
    """

    def __init__(self, data, *, split: str = "train", cameras: Sequence[int] | None = None,
                 occlusion: Occlusion | None = None, seed: int = 0, use_detections: bool = False,
                 random_views: float | bool = 0.0, levels_3d: bool = False, det_min_score: float = 0.0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if occlusion is not None and not isinstance(occlusion, Occlusion):
            raise ValueError(f"occlusion must be an Occlusion or None, got {type(occlusion).__name__}")
        if isinstance(data, (str, Path)):
            source, arrays = str(data), load_dataset(data)
        else:
            source, arrays = "<arrays>", validate_dataset(data)
        random_views = float(random_views)
        if not 0.0 <= random_views <= 1.0:
            raise ValueError(f"random_views must be a fraction in [0, 1] (or a bool), got {random_views}")
        if use_detections and random_views > 0:
            raise ValueError("use_detections and random_views exclude each other "
                             "(detections belong to the file's cameras)")
        if use_detections and "det_sparse" not in arrays:
            raise ValueError(f"use_detections=True needs key 'det_sparse' in {source}, which has none")
        if not (np.isfinite(det_min_score) and det_min_score >= 0):
            raise ValueError(f"det_min_score must be a finite score >= 0, got {det_min_score!r}")
        num_cameras = len(arrays["cam_R"])
        cams = np.arange(num_cameras) if cameras is None else np.asarray(list(cameras), dtype=np.int64)
        if cams.ndim != 1 or len(cams) == 0 or cams.min() < 0 or cams.max() >= num_cameras:
            raise ValueError(f"cameras must be indices in [0, {num_cameras}), got {cameras!r}")
        keep = np.ones(len(arrays["split"]), bool) if split == "all" else arrays["split"] == SPLIT_CODES[split]
        frames = np.flatnonzero(keep)
        if len(frames) == 0:
            raise ValueError(f"split {split!r} of {source} holds no frames; it has {split_names(arrays['split'])} "
                             "(use split 'all' to take every frame, e.g. for a converted mocap file)")
        self.source, self.split, self.seed, self.epoch = source, split, int(seed), 0
        self.occlusion = occlusion
        self.frames, self.cameras = frames, cams
        size = arrays["cam_size"][cams].astype(np.float64)  # (c', 2)
        self.image_size = torch.from_numpy(size.astype(np.float32))

        def norm(key):
            pix = arrays[key][frames][:, cams].astype(np.float64)  # (n', c', j, 2)
            return normalize_screen(pix, size[None, :, None, 0], size[None, :, None, 1]).astype(np.float32)

        self._pix_input = (arrays["det_sparse"] if use_detections else arrays["pix_sparse"])[frames][:, cams]
        self._pix_input = np.ascontiguousarray(self._pix_input, dtype=np.float32)
        self._sparse_clean = _tensor(norm("pix_sparse"))
        self._sparse_input = _tensor(norm("det_sparse")) if use_detections else self._sparse_clean
        # (n' * c', 17) visibility before occlusion: the detector's (missed or below det_min_score = hidden)
        score = arrays.get("det_score") if use_detections else None
        score = None if score is None else score[frames][:, cams]
        self._visible_input = (torch.ones(len(frames) * len(cams), 17, dtype=torch.bool) if score is None
                               else _tensor((score > 0) & (score >= det_min_score)))
        self.det_min_score = float(det_min_score)
        dense, fine = norm("pix_dense"), norm("pix_fine")
        self._dense_visible = _tensor(np.isfinite(dense).all(-1))
        self._fine_visible = _tensor(np.isfinite(fine).all(-1))
        self._dense = _tensor(np.nan_to_num(dense, nan=0.0))
        self._fine = _tensor(np.nan_to_num(fine, nan=0.0))
        self._sparse_3d = _tensor(arrays["cam_sparse"][frames][:, cams].astype(np.float32))
        self._action = torch.from_numpy(arrays["action"][frames].astype(np.int64))
        self._sequence = torch.from_numpy(arrays["sequence"][frames].astype(np.int64))
        self._scale = (2.0 / size[:, :1]).astype(np.float32)  # (c', 1): pixels -> normalised
        self._offset = np.concatenate([np.ones_like(size[:, :1]), size[:, 1:] / size[:, :1]], 1).astype(np.float32)
        self.action_names = [str(a) for a in arrays["action_names"]]
        self.sequence_names = [str(s) for s in arrays["sequence_names"]]
        self.parts_dense = torch.from_numpy(arrays["parts_dense"].astype(np.int64))
        self.parts_fine = torch.from_numpy(arrays["parts_fine"].astype(np.int64))
        self.fine_to_dense = torch.from_numpy(arrays["fine_to_dense"].astype(np.int64))
        self.fps = float(arrays["fps"])
        self.random_views, self.levels_3d = random_views, bool(levels_3d)
        if self.levels_3d:  # root-relative world offsets of the 144 level points; rotated per camera on demand
            rel = arrays["world_dense"][frames], arrays["world_fine"][frames]
            rel = np.concatenate(rel, 1) - arrays["world_sparse"][frames][:, :1]
            self._levels_rel = torch.from_numpy(np.nan_to_num(rel, nan=0.0).astype(np.float32))  # (n', 144, 3)
            self._cam_R = torch.from_numpy(arrays["cam_R"][cams].astype(np.float32))  # (c', 3, 3)
        if self.random_views > 0:
            world = np.concatenate([arrays[f"world_{k}"][frames] for k in ("sparse", "dense", "fine")], 1)
            self._world = world.astype(np.float64)  # (n', 161, 3)
            self._root_xy = world[:, 0, :2].astype(np.float64)  # (n', 2)

    @property
    def num_actions(self) -> int:
        """Number of action labels ``a``."""
        return len(self.action_names)

    @property
    def num_cameras(self) -> int:
        """Number of cameras used."""
        return len(self.cameras)

    @property
    def item_sequence(self) -> torch.Tensor:
        """``(len(self),)`` int64 sequence id of every item (item ``f * c' + c`` is frame ``f``, camera ``c``)."""
        return self._sequence.repeat_interleave(len(self.cameras))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose occlusion draws items use (reproducible per (seed, epoch, index))."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.frames) * len(self.cameras)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices) -> list[dict[str, torch.Tensor]]:
        """Items of many indices at once (the DataLoader calls this per batch); occlusion is
        vectorised over the batch, with each item's draws still from its own (seed, epoch, index)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"indices must lie in [0, {len(self)}), got range [{idx.min()}, {idx.max()}]")
        if self.random_views > 0:
            draws = np.stack([self._view_rng(int(i)).random(7) for i in idx]) if len(idx) else np.zeros((0, 7))
            viewed = draws[:, 0] < self.random_views
            if viewed.any():
                rig = iter(self._rig_items(idx[~viewed]) if (~viewed).any() else [])
                new = iter(self._random_view_items(idx[viewed], draws[viewed, 1:]))
                return [next(new) if v else next(rig) for v in viewed]
        return self._rig_items(idx)

    @staticmethod
    def _level_points_3d(points: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """``dense_3d``/``fine_3d`` entries from the ``(k, 144, 3)`` root-relative camera-frame level points."""
        return {} if points is None else {"dense_3d": points[:, :48], "fine_3d": points[:, 48:]}

    def _view_rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index``'s viewpoint: fixed across epochs."""
        return np.random.default_rng((self.seed, index, 7919))

    def _rig_items(self, idx: np.ndarray) -> list[dict[str, torch.Tensor]]:
        """Items filmed by the file's cameras, occlusion vectorised over the batch."""
        f, c = np.divmod(idx, len(self.cameras))
        rows, ft = torch.from_numpy(idx), torch.from_numpy(f)  # row of item (f, c) is its index
        sparse_2d, visible = self._sparse_input.index_select(0, rows), self._visible_input.index_select(0, rows)
        if self.occlusion is not None:
            draws = [self.occlusion.draw(np.random.default_rng((self.seed, self.epoch, int(i)))) for i in idx]
            pix, vis = Occlusion.apply_draws(self._pix_input[f, c], visible.numpy(), draws)
            sparse_2d = torch.from_numpy((pix * self._scale[c][:, None] - self._offset[c][:, None]).astype(np.float32))
            visible = torch.from_numpy(vis)
        batch = {
            "sparse_2d": sparse_2d,
            "sparse_visible": visible,
            "sparse_2d_clean": self._sparse_clean.index_select(0, rows),
            "dense_2d": self._dense.index_select(0, rows),
            "fine_2d": self._fine.index_select(0, rows),
            "dense_visible": self._dense_visible.index_select(0, rows),
            "fine_visible": self._fine_visible.index_select(0, rows),
            "sparse_3d": self._sparse_3d.index_select(0, rows),
            **self._level_points_3d(torch.einsum("kij,kpj->kpi", self._cam_R[torch.from_numpy(c)],
                                                 self._levels_rel.index_select(0, ft)) if self.levels_3d else None),
            "action": self._action.index_select(0, ft),
            "sequence": self._sequence.index_select(0, ft),
            "camera": torch.from_numpy(self.cameras[c]),
            "frame": torch.from_numpy(self.frames[f].astype(np.int64)),
        }
        return [{key: value[k] for key, value in batch.items()} for k in range(len(idx))]

    def _random_view_items(self, idx: np.ndarray, u: np.ndarray) -> list[dict[str, torch.Tensor]]:
        """Items filmed by random cameras (vectorised): ``u (k, 6)`` uniform draws per item give the target's
        horizontal jitter (2), azimuth, elevation, distance and focal length (`random_cameras`' ranges)."""
        f = idx // len(self.cameras)
        target = np.concatenate([self._root_xy[f] + (u[:, :2] - 0.5), np.full((len(f), 1), 0.9)], 1)
        az = np.deg2rad(-180.0 + 360.0 * u[:, 2])
        el = np.deg2rad(-5.0 + 30.0 * u[:, 3])
        dist = 3.5 + 3.0 * u[:, 4]
        focal = 1000.0 + 300.0 * u[:, 5]
        eye = target + dist[:, None] * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], 1)
        forward = (target - eye) / dist[:, None]
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right, axis=1, keepdims=True)
        down = np.cross(forward, right)
        rot = np.stack([right, down, forward], 1)  # (k, 3, 3) world -> camera
        cam = np.einsum("kij,kpj->kpi", rot, self._world[f] - eye[:, None])  # (k, 161, 3) metres
        pix = cam[..., :2] / cam[..., 2:3] * focal[:, None, None] + _VIEW_SIZE / 2
        uv = torch.from_numpy(normalize_screen(pix, _VIEW_SIZE, _VIEW_SIZE).astype(np.float32))
        finite = torch.from_numpy(np.isfinite(pix).all(-1))
        sparse_2d, visible = uv[:, :17], torch.ones(len(f), 17, dtype=torch.bool)
        if self.occlusion is not None:
            draws = [self.occlusion.draw(np.random.default_rng((self.seed, self.epoch, int(i)))) for i in idx]
            occ_pix, vis = Occlusion.apply_draws(pix[:, :17].astype(np.float32), np.ones((len(f), 17), bool), draws)
            sparse_2d = torch.from_numpy(normalize_screen(occ_pix, _VIEW_SIZE, _VIEW_SIZE).astype(np.float32))
            visible = torch.from_numpy(vis)
        root_rel = cam[:, :17] - cam[:, :1]
        batch = {
            "sparse_2d": sparse_2d,
            "sparse_visible": visible,
            "sparse_2d_clean": uv[:, :17],
            "dense_2d": torch.nan_to_num(uv[:, 17:65], nan=0.0),
            "fine_2d": torch.nan_to_num(uv[:, 65:], nan=0.0),
            "dense_visible": finite[:, 17:65],
            "fine_visible": finite[:, 65:],
            "sparse_3d": torch.from_numpy(root_rel.astype(np.float32)),
            **self._level_points_3d(torch.from_numpy(np.nan_to_num(cam[:, 17:] - cam[:, :1], nan=0.0).astype(np.float32))
                                    if self.levels_3d else None),
            "action": self._action[f],
            "sequence": self._sequence[f],
            "camera": torch.full((len(f),), -1, dtype=torch.long),
            "frame": torch.from_numpy(self.frames[f].astype(np.int64)),
        }
        return [{key: value[k] for key, value in batch.items()} for k in range(len(f))]
