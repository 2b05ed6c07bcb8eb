"""Train / validation / test splits by take, with near-duplicate takes kept on one side.

A *take* is one source recording (a mocap file or clip). Its variants (mirrored motion, other body shapes)
are sequences of the dataset file that always share their take's split. Two takes are *near duplicates*
when each is covered by the other: for every frame of one, some frame of the other (or of its left/right
mirror, since training data is mirrored) has a mean joint distance below ``threshold_m`` after removing
the root position and the heading. Near-duplicate takes form a *group* (union-find over the pairs), and
whole groups go to one split, so a test take never has a near-copy in training. In the default data the
DeepMimic walker clips (``0walk_forward``, ``turn_left0/1``, ``turn_right0/1``) and ``walk`` form one group
(2-5.5 cm apart); the climbing takes are 6.5-13 cm apart and stay separate takes.

Shapes: ``n`` frames of a take, ``j = 17`` joints in Human3.6M-17 order, metres.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from skeletok.data.sets.fileformat import SPLIT_CODES
from skeletok.skeleton import H36M_17

__all__ = ["heading_free", "mirror_joints", "take_distance", "near_duplicate_groups", "split_by_sequence",
           "split_takes", "take_folds", "frame_sources", "frames_per_split"]

_FLIP = np.asarray(H36M_17.flip_permutation)
_RIGHT_HIP, _LEFT_HIP = H36M_17.index("right_hip"), H36M_17.index("left_hip")


def heading_free(poses) -> np.ndarray:
    """Root-relative poses turned about +z so the left-to-right hip axis lies along +x, ``(n, 17, 3)`` metres."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise ValueError(f"poses must have shape (n, 17, 3) in Human3.6M-17 order, got {poses.shape}")
    rel = poses - poses[:, :1]
    hips = rel[:, _RIGHT_HIP] - rel[:, _LEFT_HIP]
    angle = np.arctan2(hips[:, 1], hips[:, 0])
    cos, sin = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
    x = cos * rel[..., 0] - sin * rel[..., 1]
    y = sin * rel[..., 0] + cos * rel[..., 1]
    return np.stack([x, y, rel[..., 2]], axis=-1)


def mirror_joints(poses) -> np.ndarray:
    """Left/right mirror of Human3.6M-17 poses ``(n, 17, 3)``: x negated, left and right joints swapped."""
    out = np.asarray(poses, dtype=np.float64)[:, _FLIP].copy()
    out[..., 0] *= -1.0
    return out


def _covered(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of ``a`` of the distance (mean over joints) to the nearest frame of ``b``."""
    best = np.full(len(a), np.inf)
    for start in range(0, len(b), 256):
        d = np.linalg.norm(a[:, None] - b[None, start:start + 256], axis=-1).mean(-1)
        best = np.minimum(best, d.min(1))
    return float(best.mean())


def take_distance(a, b, *, mirror: bool = True) -> float:
    """Symmetric near-duplicate distance of two takes, metres.

    ``max(covered(a, b), covered(b, a))`` on heading-free poses, where ``covered(a, b)`` is the mean over
    frames of ``a`` of the mean joint distance to the nearest frame of ``b``; with ``mirror``, the smaller of
    that and the same against ``b``'s mirror.

    Args:
        a: ``(n_a, 17, 3)`` world joints of one take.
        b: ``(n_b, 17, 3)`` of another.
        mirror: also compare against the left/right mirror of ``b``.
    """
    ha, hb = heading_free(a), heading_free(b)
    dist = max(_covered(ha, hb), _covered(hb, ha))
    if mirror:
        hm = heading_free(mirror_joints(b))
        dist = min(dist, max(_covered(ha, hm), _covered(hm, ha)))
    return dist


def near_duplicate_groups(takes: Sequence, *, threshold_m: float = 0.06, mirror: bool = True,
                          max_frames: int = 150) -> np.ndarray:
    """Group ids ``(t,)`` of takes: takes closer than ``threshold_m`` (`take_distance`) share a group.

    Args:
        takes: per take, ``(n, 17, 3)`` world joints in metres.
        threshold_m: near-duplicate distance, metres (6 cm by default: the walker clips are 2-5.5 cm apart,
            separate climbing takes 6.5-13 cm).
        mirror: count a take's mirror image as a duplicate too.
        max_frames: frames per take compared (evenly spaced), which bounds the cost.

    Returns:
        ``(t,)`` int64 group ids, numbered in order of each group's first take.
    """
    if threshold_m < 0:
        raise ValueError(f"threshold_m must be >= 0, got {threshold_m}")
    subs = []
    for poses in takes:
        poses = np.asarray(poses, dtype=np.float64)
        idx = np.unique(np.linspace(0, len(poses) - 1, min(len(poses), max_frames)).round().astype(np.int64))
        subs.append(poses[idx])
    parent = list(range(len(subs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(subs)):
        for k in range(i + 1, len(subs)):
            if root(i) != root(k) and take_distance(subs[i], subs[k], mirror=mirror) < threshold_m:
                parent[root(k)] = root(i)
    roots = [root(i) for i in range(len(subs))]
    first = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return np.array([first[r] for r in roots], dtype=np.int64)


def split_by_sequence(sequence_names, frames_per_sequence, *, test_sequences=None, test_fraction: float = 0.2,
                      seed: int = 0) -> np.ndarray:
    """Test sequences only (no validation, no groups): `split_takes` with every take its own group.

    Returns ``(s,)`` int8, 1 for test.
    """
    names = list(sequence_names)
    return split_takes(names, frames_per_sequence, test=test_sequences, test_fraction=test_fraction,
                       val_fraction=0.0, seed=seed)


def split_takes(names, frames, *, groups=None, val=None, test=None, val_fraction: float = 0.0,
                test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Split codes (`SPLIT_CODES`: 0 train, 1 test, 2 val) per take, whole groups on one side.

    With ``test`` / ``val`` (take names), those takes and every take of their groups go to that split (each
    name must exist; a group named in both is an error). Otherwise whole groups are drawn in a seeded random
    order until at least ``test_fraction`` (then ``val_fraction``) of the frames are taken, keeping at least
    one training group when there are two or more.

    Args:
        names: ``(t,)`` take names.
        frames: ``(t,)`` frames per take.
        groups: ``(t,)`` near-duplicate group ids (`near_duplicate_groups`); every take alone when ``None``.
        val: names of the validation takes (``None``: drawn by ``val_fraction``).
        test: names of the test takes (``None``: drawn by ``test_fraction``).
        val_fraction: fraction of frames drawn for validation when ``val`` is ``None``.
        test_fraction: fraction of frames drawn for test when ``test`` is ``None``.
        seed: seeds the draws.

    Returns:
        ``(t,)`` int8 split codes.

    Raises:
        ValueError: unknown names, a group named in both val and test, fractions outside [0, 1).
    """
    names = [str(n) for n in names]
    frames = np.asarray(frames, dtype=np.int64)
    groups = np.arange(len(names)) if groups is None else np.asarray(groups, dtype=np.int64)
    if not (len(frames) == len(groups) == len(names)):
        raise ValueError(f"names, frames and groups must have one entry per take, got lengths "
                         f"{len(names)}, {len(frames)}, {len(groups)}")
    for label, fraction in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{label} must lie in [0, 1), got {fraction}")
    split = np.zeros(len(names), dtype=np.int8)
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    for key, chosen, fraction in (("test", test, test_fraction), ("val", val, val_fraction)):
        code = SPLIT_CODES[key]
        if chosen is not None:
            unknown = sorted(set(chosen) - set(names))
            if unknown:
                raise ValueError(f"{key} names {unknown} are not among the takes {names}")
            picked = np.isin(groups, groups[[names.index(n) for n in chosen]])
            clash = picked & (split != 0)
            if clash.any():
                raise ValueError(f"{key} takes {[names[i] for i in np.flatnonzero(clash)]} are near duplicates of "
                                 "takes already in another split; name the whole group on one side")
            split[picked] = code
            if len(names) > 1 and not (split == 0).any():
                raise ValueError(f"{key} takes {list(chosen)} and their near duplicates are every take, which leaves "
                                 "nothing to train on; lower the near-duplicate threshold (near_duplicate_m) or "
                                 "name other takes")
            continue
        if fraction == 0 or len(unique) < 2:
            continue
        total, taken = frames.sum(), 0
        for g in rng.permutation(unique):
            free = (split == 0)
            if taken >= fraction * total or len(np.unique(groups[free])) <= 1:
                break
            members = (groups == g) & free
            if not members.any() or members.sum() != (groups == g).sum():
                continue
            split[members], taken = code, taken + frames[members].sum()
    return split


def take_folds(arrays, folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold id ``(s,)`` of every sequence of a dataset's arrays for out-of-fold training; -1 outside training.

    The unit dealt is the near-duplicate group (``sequence_group``; else the take, ``sequence_take``; else the
    sequence), so a take, its variants and its near copies share a fold. Groups go, largest first (ties in a
    seeded order), to the fold with the fewest frames so far, which balances the folds' frames.

    Raises:
        ValueError: ``folds < 2`` or fewer training groups than folds.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    sequence = np.asarray(arrays["sequence"])
    num_seq = len(arrays["sequence_names"])
    if "sequence_group" in arrays:
        unit = np.asarray(arrays["sequence_group"], dtype=np.int64)
    else:
        names = arrays["sequence_take"] if "sequence_take" in arrays else arrays["sequence_names"]
        unit = np.unique(np.asarray(names, dtype=str), return_inverse=True)[1]
    seq_split = np.full(num_seq, -1)
    seq_split[sequence] = np.asarray(arrays["split"])
    frames = np.bincount(sequence, minlength=num_seq)
    train_units = np.unique(unit[seq_split == SPLIT_CODES["train"]])
    if len(train_units) < folds:
        raise ValueError(f"{len(train_units)} training take group(s) cannot be dealt into {folds} folds")
    unit_frames = np.array([frames[(unit == u) & (seq_split == 0)].sum() for u in train_units])
    order = np.random.default_rng(seed).permutation(len(train_units))
    order = order[np.argsort(-unit_frames[order], kind="stable")]
    load, fold_of = np.zeros(folds, dtype=np.int64), {}
    for k in order:
        f = int(np.argmin(load))
        fold_of[int(train_units[k])] = f
        load[f] += unit_frames[k]
    return np.array([fold_of.get(int(u), -1) if seq_split[i] == 0 else -1 for i, u in enumerate(unit)],
                    dtype=np.int64)


def frame_sources(arrays) -> np.ndarray:
    """``(n,)`` source of every frame of a dataset's arrays: the first part of its take's name (``sequence_take``,
    else the sequence name), e.g. ``holosoma/mocap_climb_seq_0`` -> ``holosoma``."""
    takes = arrays["sequence_take"] if "sequence_take" in arrays else arrays["sequence_names"]
    return np.array([str(t).split("/")[0] for t in takes])[np.asarray(arrays["sequence"])]


def frames_per_split(arrays) -> dict[str, dict[str, int]]:
    """Frames per source and split of a dataset's arrays: ``{source: {"train": n, "val": n, "test": n}}``.

    The source of a sequence is the first part of its take's name (``holosoma/mocap_climb_seq_0`` ->
    ``holosoma``); files without ``sequence_take`` use the sequence names. ``"all"`` sums the sources.
    """
    source = frame_sources(arrays)
    split = np.asarray(arrays["split"])
    out: dict[str, dict[str, int]] = {}
    for src in [*dict.fromkeys(source.tolist()), "all"]:
        sel = np.ones(len(split), bool) if src == "all" else source == src
        out[src] = {name: int((sel & (split == code)).sum()) for name, code in SPLIT_CODES.items()}
    return out
