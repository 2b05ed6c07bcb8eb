"""Data plumbing shared by the HiPART recipes: resolving the dataset file, its metadata, occlusion, wrappers.

The dataset file and its items are fixed in docs/concepts.md; the recipes read them through
`skeletok.data.sets.dataset.HierarchicalPoseDataset`. This file only adds what training needs on top:

- `resolve_data`: the configured ``.npz`` or the default dataset (built once, by rank 0);
- `dataset_meta`: part ids and action count, read from the file (they size the tokenizer);
- `occlusion_of`: the config's augmentation as an `Occlusion` protocol;
- `Indexed` / `Attached` / `TensorItems`: wrappers adding a sample's index, per-sample precomputed tensors
  (tokens, generated levels), or serving precomputed tensors as items.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .config import RunConfig
from .distributed import DistInfo, barrier

__all__ = ["INPUTS", "resolve_data", "require_levels", "dataset_meta", "occlusion_of", "make_dataset", "train_set_of",
           "sequence_folds", "Indexed", "Attached", "Selected", "TensorItems", "EpochDraws", "ordered_batches"]


def resolve_data(cfg: RunConfig, info: DistInfo) -> Path:
    """The dataset file: ``cfg.data`` if set, else the default dataset (built by rank 0 if missing).

    Raises:
        FileNotFoundError: when ``cfg.data`` names a file that does not exist.
    """
    if cfg.data:
        path = Path(cfg.data)
        if not path.is_file():
            raise FileNotFoundError(f"data={cfg.data!r}: no such dataset file (build one with `skeletok data build`)")
        return path
    from skeletok.data.sets.build import build_default_dataset

    if info.is_main:
        path = build_default_dataset()
    barrier(info)
    if not info.is_main:
        path = build_default_dataset()
    return Path(path)


def require_levels(path: str | Path, stage: str) -> None:
    """Refuse a dataset whose training frames lack dense/fine ground truth (NaN levels, e.g. Human3.6M converted
    without body meshes): ``stage`` (the tokenizer, the prior, the oracle lifter) cannot learn from it.

    Raises:
        ValueError: naming the file, how many training frames have no levels, and the fix.
    """
    from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset

    arrays = load_dataset(path)
    train = np.asarray(arrays["split"]) == SPLIT_CODES["train"]
    missing = int((~np.isfinite(arrays["world_fine"][train]).all((1, 2))
                   | ~np.isfinite(arrays["world_dense"][train]).all((1, 2))).sum())
    if missing:
        raise ValueError(f"{path}: {missing} of {int(train.sum())} training frames have no dense/fine ground truth "
                         f"(NaN levels), which {stage} needs to train; build the file with levels (for Human3.6M: "
                         "`skeletok data from-h36m` without `--levels none`, which retargets skeletok's body onto "
                         "the joints), or train only the sparse-only lifter "
                         "(`train-lifter mode=sparse_only`)")


def dataset_meta(path: str | Path) -> dict:
    """Plain metadata of a dataset file: ``parts_fine``, ``parts_dense`` (lists), ``num_actions``, sizes.

    Raises:
        ValueError: from `skeletok.data.load_dataset` when the file is not a valid dataset.
    """
    from skeletok.data.sets.fileformat import load_dataset

    arrays = load_dataset(path)
    split = np.asarray(arrays["split"])
    return {
        "parts_fine": [int(v) for v in arrays["parts_fine"]],
        "parts_dense": [int(v) for v in arrays["parts_dense"]],
        "num_parts": int(max(np.max(arrays["parts_fine"]), np.max(arrays["parts_dense"]))) + 1,
        "num_actions": int(len(arrays["action_names"])),
        "frames_train": int((split == 0).sum()),
        "frames_test": int((split == 1).sum()),
        "cameras": int(arrays["cam_R"].shape[0]),
    }


def occlusion_of(cfg: RunConfig):
    """The config's occlusion augmentation: per sample, with probability ``occlusion_prob``, crop and mask
    ratios drawn uniformly in ``[0, crop_ratio]`` and ``[0, mask_ratio]``; ``noise_px`` of 2D noise always."""
    from skeletok.data.views.occlusion import Occlusion

    return Occlusion(mask_ratio=(0.0, float(cfg.mask_ratio)), crop_ratio=(0.0, float(cfg.crop_ratio)),
                     noise_px=float(cfg.noise_px), probability=float(cfg.occlusion_prob))


INPUTS = ("ground_truth", "detections")


def make_dataset(path: str | Path, *, split: str, occlusion=None, seed: int = 0, random_views: float = 0.0,
                 inputs: str = "ground_truth", levels_3d: bool = False, det_min_score: float = 0.0) -> Dataset:
    """`HierarchicalPoseDataset` over ``split`` (``train``/``val``/``test``/``all``) with an optional occlusion
    protocol and random viewpoints.

    Args:
        inputs: ``sparse_2d`` from the projected ground truth (``ground_truth``) or from the file's 2D
            detections (``detections``, key ``det_sparse``); occlusion applies to either. Detected keypoints
            the detector missed, or scored below ``det_min_score`` (key ``det_score``), are hidden.
        levels_3d: items also carry ``dense_3d``/``fine_3d`` (camera frame, root-relative, metres).

    Raises:
        ValueError: for ``inputs=detections`` on a file without detections (naming it and the fix), or with
            ``random_views > 0`` (detections belong to the file's cameras).
    """
    from skeletok.data.sets.dataset import HierarchicalPoseDataset

    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {list(INPUTS)}, got {inputs!r}")
    detections = inputs == "detections"
    if detections:
        with np.load(path) as z:
            has = "det_sparse" in z.files
        if not has:
            raise ValueError(f"{path}: inputs=detections needs 2D detections in the dataset file (key det_sparse), "
                             "which it has none of; convert with them (`skeletok data from-h36m ... --data-2d "
                             "data_2d_h36m_cpn_ft_h36m_dbb.npz`) or use inputs=ground_truth")
        if random_views > 0:
            raise ValueError(f"inputs=detections needs random_views=0 (got {random_views}): the detections belong "
                             "to the file's own cameras; pass random_views=0")
    return HierarchicalPoseDataset(path, split=split, occlusion=occlusion, seed=seed, random_views=random_views,
                                   use_detections=detections, levels_3d=levels_3d, det_min_score=det_min_score)


def train_set_of(cfg: RunConfig, data: str | Path, *, occlusion=None) -> Dataset:
    """The training split of ``data`` as a stage's config asks: ``cfg.random_views``, ``cfg.inputs`` and
    ``cfg.det_min_score`` (stages that have them; ground truth otherwise), seeded by ``cfg.seed``; with the level
    points' 3D for a lifter whose ``aux_3d`` weight is > 0."""
    return make_dataset(data, split="train", occlusion=occlusion, seed=cfg.seed, random_views=cfg.random_views,
                        inputs=getattr(cfg, "inputs", "ground_truth"), levels_3d=getattr(cfg, "aux_3d", 0) > 0,
                        det_min_score=getattr(cfg, "det_min_score", 0.0))


def sequence_folds(path: str | Path, folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold id ``(s,)`` of every sequence of a dataset file for out-of-fold training (-1 outside training).

    Training takes are dealt into ``folds`` folds by near-duplicate group (`skeletok.data.sets.splits.take_folds`);
    the variants of a take share its fold.
    """
    from skeletok.data.sets.fileformat import load_dataset
    from skeletok.data.sets.splits import take_folds

    return take_folds(load_dataset(path), folds, seed=seed)


def _fetch(base: Dataset, indices: list[int]) -> list[dict]:
    """Items ``indices`` of ``base``, through its batched ``__getitems__`` when it has one."""
    fetch = getattr(base, "__getitems__", None)
    return fetch(indices) if fetch is not None else [base[i] for i in indices]


class Indexed(Dataset):
    """Adds ``index`` (long scalar) to every item of ``base``; forwards ``set_epoch``."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list[dict]:
        """Items of many indices at once, through the base dataset's batched ``__getitems__`` when it has one."""
        items = _fetch(self.base, list(indices))
        return [dict(item, index=torch.tensor(i, dtype=torch.long)) for i, item in zip(indices, items)]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


class Attached(Indexed):
    """Items of ``base`` plus per-sample tensors: ``tensors[name][i]`` is added to item ``i`` as ``name``.

    Raises:
        ValueError: when a tensor's first axis does not match ``len(base)``.
    """

    def __init__(self, base: Dataset, **tensors: torch.Tensor):
        super().__init__(base)
        for name, value in tensors.items():
            if value.shape[0] != len(base):
                raise ValueError(f"{name} has {value.shape[0]} rows, expected one per sample ({len(base)})")
        self.tensors = tensors

    def __getitems__(self, indices) -> list[dict]:
        items = super().__getitems__(indices)
        for i, item in zip(indices, items):
            item.update({name: value[i] for name, value in self.tensors.items()})
        return items


class Selected(Dataset):
    """The items ``indices`` of ``base`` (batched ``__getitems__`` and ``set_epoch`` forwarded)."""

    def __init__(self, base: Dataset, indices):
        self.base = base
        self.indices = [int(i) for i in indices]
        if not self.indices:
            raise ValueError("Selected needs at least one index")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list[dict]:
        return _fetch(self.base, [self.indices[i] for i in indices])

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


class TensorItems(Dataset):
    """A dataset whose item ``i`` is ``{name: tensors[name][i]}`` (precomputed training sets).

    Raises:
        ValueError: when the tensors disagree on the number of rows.
    """

    def __init__(self, **tensors: torch.Tensor):
        sizes = {name: value.shape[0] for name, value in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"tensors must share their first axis, got sizes {sizes}")
        self.tensors = tensors
        self.size = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        return {name: value[i] for name, value in self.tensors.items()}


class EpochDraws(Dataset):
    """Precomputed training sets, one per epoch: epoch ``e`` serves ``draws[e % len(draws)]`` (`set_epoch`), so a
    precomputed set can follow the per-epoch occlusion draws of the dataset it was made from.

    Raises:
        ValueError: when there are no draws or they differ in length.
    """

    def __init__(self, draws: list[Dataset]):
        if not draws or len({len(d) for d in draws}) != 1:
            raise ValueError(f"EpochDraws needs >= 1 draws of one length, got lengths {[len(d) for d in draws]}")
        self.draws, self.current = list(draws), draws[0]

    def __len__(self) -> int:
        return len(self.current)

    def __getitem__(self, i: int) -> dict:
        return self.current[i]

    def set_epoch(self, epoch: int) -> None:
        self.current = self.draws[int(epoch) % len(self.draws)]


def ordered_batches(dataset: Dataset, batch_size: int, num_workers: int = 0):
    """Iterate ``dataset`` in index order in batches (for precomputation passes; no shuffling, no RNG use)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(0))
