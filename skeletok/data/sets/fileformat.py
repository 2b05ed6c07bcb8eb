"""The dataset file (``.npz``, format version 1): writing and validated loading.

The keys, shapes and meanings are fixed in ``docs/concepts.md``; ``n`` frames, ``c`` cameras,
``a`` actions, ``s`` sequences. Optional keys written by skeletok's builders:

- ``cam_radial (c, 3)``, ``cam_tangential (c, 2)``: lens distortion (Human3.6M); zeros if none.
- ``sequence_offset (s, 3)``: the translation (metres) the builder added to each sequence to
  bring its mean root onto the camera rig's target; subtract it to recover the source world.
- ``det_sparse (n, c, 17, 2)``: detected 2D (pixels), e.g. Human3.6M's CPN detections.
- ``det_score (n, c, 17)``: the detector's score of every ``det_sparse`` keypoint, as the 2D file gives it
  (finite, >= 0; 1 where the file has no scores, e.g. VideoPose3D's CPN file); 0 marks a **missed** keypoint
  (the detector gave none: NaN coordinates or a score <= 0 in the 2D file), whose ``det_sparse`` holds a finite
  placeholder (never read: the Dataset hides it, see :mod:`skeletok.data.sets.dataset`). Only with
  ``det_sparse``; absent (files written before this key existed): every detection counts as score 1.
- ``sequence_source``, ``sequence_mapping`` (str) and ``sequence_shape`` (int), ``(s,)``: where
  each sequence came from (a motion file path, or ``"skeletok:motion_assets"``), the joint
  mapping used (name or path, ``""`` for none) and the body shape, so the mesh can be rebuilt
  for pictures (:mod:`skeletok.data.sets.show`).
- ``sequence_take`` (str) and ``sequence_group`` (int), ``(s,)``: the source take of each sequence
  (training variants of one take, mirrored or on other body shapes, share it) and its
  near-duplicate group (:mod:`skeletok.data.sets.splits`); splits never cut a group.
- ``sequence_cam_R (s, c, 3, 3)``, ``sequence_cam_t (s, c, 3)``: per-sequence extrinsics where
  they differ between sequences (Human3.6M calibrates each subject); ``cam_R``/``cam_t`` then
  hold the first sequence's.
- ``rig_shift (n, 3)``: per-frame translation (metres) of the whole camera rig, for sequences whose cameras
  follow the subject (:mod:`skeletok.data.views.placement`): at frame ``i`` camera ``k`` is ``cam_R[k]``,
  ``cam_t[k] - cam_R[k] @ rig_shift[i]``; zeros for sequences filmed by the fixed rig. Absent: every frame is
  filmed by the fixed rig (files written before this key existed included). ``pix_*`` and ``cam_sparse``
  already hold what the moved cameras see, so readers of 2D and camera-frame 3D need nothing else.
- ``source_frame (n,)`` (int): the frame of the sequence's source take, resampled to ``fps``, that each row is
  (rows are a subset of the take's frames when the builder capped it, ``max_frames``, or dropped frames out of
  view); ``sequence_mirrored`` (int 0/1), ``sequence_scale`` and ``sequence_root_scale`` (float), ``(s,)``: whether
  a training variant is the mirrored take, its size factor (about the ground point under the rig's target, after
  ``sequence_offset``) and the retargeting's root-trajectory scale. With ``sequence_source`` they rebuild the
  mesh of any row (:func:`skeletok.data.sets.show.posed_mesh`); files written before these keys existed rebuild
  only rows of uncapped, unvaried sequences.
- ``sequence_fit_mm (s,)``: where the dense/fine levels come from skeletok's body retargeted onto given
  joints (Human3.6M without SMPL), the mean distance (mm) between the body's 17 joints and the given ones.

``world_dense``/``world_fine`` and ``pix_dense``/``pix_fine`` may be NaN where the dense and fine
levels are unknown (Human3.6M converted without SMPL meshes); every other float must be finite.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from skeletok._checks import check_shape

__all__ = ["FORMAT_VERSION", "REQUIRED_KEYS", "SPLIT_CODES", "split_names", "save_dataset", "load_dataset",
           "validate_dataset"]

FORMAT_VERSION = 1

#: The ``split`` key's codes (whole sequences, never frames, go to one split).
SPLIT_CODES: dict[str, int] = {"train": 0, "test": 1, "val": 2}


def split_names(split) -> list[str]:
    """Names of the splits that hold at least one frame of a ``split`` array ``(n,)``, in code order."""
    present = set(np.unique(np.asarray(split)).tolist())
    return [name for name, code in SPLIT_CODES.items() if code in present]

# key -> (shape spec, dtype kind); ints exact, letters shared sizes.
REQUIRED_KEYS: dict[str, tuple[tuple, str]] = {
    "format_version": ((), "i"),
    "world_sparse": (("n", 17, 3), "f"),
    "world_dense": (("n", 48, 3), "f"),
    "world_fine": (("n", 96, 3), "f"),
    "cam_R": (("c", 3, 3), "f"),
    "cam_t": (("c", 3), "f"),
    "cam_f": (("c", 2), "f"),
    "cam_c": (("c", 2), "f"),
    "cam_size": (("c", 2), "f"),
    "pix_sparse": (("n", "c", 17, 2), "f"),
    "pix_dense": (("n", "c", 48, 2), "f"),
    "pix_fine": (("n", "c", 96, 2), "f"),
    "cam_sparse": (("n", "c", 17, 3), "f"),
    "parts_dense": ((48,), "i"),
    "parts_fine": ((96,), "i"),
    "fine_to_dense": ((96,), "i"),
    "action": (("n",), "i"),
    "action_names": (("a",), "U"),
    "sequence": (("n",), "i"),
    "sequence_names": (("s",), "U"),
    "split": (("n",), "i"),
    "fps": ((), "f"),
}
OPTIONAL_KEYS: dict[str, tuple[tuple, str]] = {
    "cam_radial": (("c", 3), "f"),
    "cam_tangential": (("c", 2), "f"),
    "sequence_offset": (("s", 3), "f"),
    "det_sparse": (("n", "c", 17, 2), "f"),
    "det_score": (("n", "c", 17), "f"),
    "sequence_source": (("s",), "U"),
    "sequence_mapping": (("s",), "U"),
    "sequence_shape": (("s",), "i"),
    "sequence_take": (("s",), "U"),
    "sequence_group": (("s",), "i"),
    "sequence_cam_R": (("s", "c", 3, 3), "f"),
    "sequence_cam_t": (("s", "c", 3), "f"),
    "rig_shift": (("n", 3), "f"),
    "sequence_fit_mm": (("s",), "f"),
    "source_frame": (("n",), "i"),
    "sequence_mirrored": (("s",), "i"),
    "sequence_scale": (("s",), "f"),
    "sequence_root_scale": (("s",), "f"),
}
_MAY_BE_NAN = {"world_dense", "world_fine", "pix_dense", "pix_fine"}
_DTYPES = {"i": "int", "f": "float", "U": "str"}


def _kind_ok(arr: np.ndarray, kind: str) -> bool:
    if kind == "i":
        return arr.dtype.kind in "iu"
    if kind == "f":
        return arr.dtype.kind in "fiu"
    return arr.dtype.kind in "US"


def validate_dataset(arrays, source: str = "<arrays>") -> dict[str, np.ndarray]:
    """Check keys, shapes, dtypes, version and index ranges of a dataset's arrays.

    Args:
        arrays: mapping key -> array (an open ``.npz`` or a dict).
        source: file name used in error messages.

    Returns:
        A plain dict of numpy arrays (all keys read).

    Raises:
        ValueError: naming ``source`` and the offending key, what was found and what was expected.
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{source}: not a skeletok dataset file, missing key(s) {missing}")
    out = {k: np.asarray(arrays[k]) for k in list(REQUIRED_KEYS) + [k for k in OPTIONAL_KEYS if k in arrays]}
    version = int(out["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{source}: key 'format_version' is {version}, this skeletok reads format {FORMAT_VERSION}; "
            "rebuild the file"
        )
    dims: dict[str, int] = {}
    for key, (spec, kind) in {**REQUIRED_KEYS, **OPTIONAL_KEYS}.items():
        if key not in out:
            continue
        arr = out[key]
        if not _kind_ok(arr, kind):
            raise ValueError(f"{source}: key {key!r} must hold {_DTYPES[kind]} values, got dtype {arr.dtype}")
        check_shape(f"{source}: key {key!r}", arr.shape, spec, dims=dims)
        if kind == "f" and key not in _MAY_BE_NAN and not np.isfinite(arr).all():
            raise ValueError(f"{source}: key {key!r} holds NaN or inf values")
    if "det_score" in out:
        if "det_sparse" not in out:
            raise ValueError(f"{source}: key 'det_score' needs key 'det_sparse' (the detections it scores)")
        if (out["det_score"] < 0).any():
            raise ValueError(f"{source}: key 'det_score' must hold scores >= 0 (0 = missed), "
                             f"got minimum {out['det_score'].min()}")
    for key, size_key in (("action", "action_names"), ("sequence", "sequence_names")):
        size = len(out[size_key])
        if len(out[key]) and (out[key].min() < 0 or out[key].max() >= size):
            raise ValueError(f"{source}: key {key!r} must hold ids in [0, {size}) ({size_key}), "
                             f"got range [{out[key].min()}, {out[key].max()}]")
    if not np.isin(out["split"], tuple(SPLIT_CODES.values())).all():
        raise ValueError(f"{source}: key 'split' must hold 0 (train), 1 (test) or 2 (val), "
                         f"got values {np.unique(out['split'])}")
    for key, size in (("parts_dense", 16), ("parts_fine", 16), ("fine_to_dense", 48)):
        arr = out[key]
        if arr.min() < 0 or arr.max() >= size:
            raise ValueError(f"{source}: key {key!r} must hold ids in [0, {size}), "
                             f"got range [{arr.min()}, {arr.max()}]")
    pairs = np.unique(out["sequence"].astype(np.int64) * 4 + out["split"].astype(np.int64))
    seqs, counts = np.unique(pairs // 4, return_counts=True)
    if (counts > 1).any():
        name = out["sequence_names"][seqs[counts > 1][0]]
        raise ValueError(f"{source}: key 'split' differs within sequence {name!r}; the split must be by sequence")
    return out


def save_dataset(arrays: dict, path) -> Path:
    """Validate and write a dataset file (uncompressed ``.npz``, fast to load).

    Casts floats to float32 and ids to int64 as the format asks, adds ``format_version``.

    Returns:
        The path written (with a ``.npz`` suffix).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"out must be a .npz path, got {str(path)!r}")
    arrays = dict(arrays)
    arrays["format_version"] = np.array(FORMAT_VERSION, dtype=np.int64)
    checked = validate_dataset(arrays, source=str(path))
    cast = {}
    for key, arr in checked.items():
        kind = {**REQUIRED_KEYS, **OPTIONAL_KEYS}[key][1]
        if key == "split":
            cast[key] = arr.astype(np.int8)
        elif key == "fps":
            cast[key] = arr.astype(np.float64)
        elif kind == "f":
            cast[key] = arr.astype(np.float32)
        elif kind == "i":
            cast[key] = arr.astype(np.int64)
        else:
            cast[key] = arr.astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")  # atomic: concurrent builders never mix
    np.savez(tmp, **cast)
    tmp.replace(path)
    return path


def load_dataset(path) -> dict[str, np.ndarray]:
    """Load and validate a dataset file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not a valid format-1 skeletok dataset (naming the file and key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist (build one with `skeletok data build`)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return validate_dataset(npz, source=str(path))
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read as an .npz dataset file ({err})") from None
    except ValueError as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot be read as a skeletok dataset file ({err})") from None
