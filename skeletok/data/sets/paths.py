"""Where skeletok keeps built data: the default dataset cache and the asset download cache.

The default dataset lives at ``$SKELETOK_DATA`` when that variable is set (a file path ending in
``.npz``, or a folder that then holds ``default-v3.npz``), otherwise at
``~/.cache/skeletok/default-v3.npz``. Tiny variants built for tests (``max_frames_per_sequence``)
get their own file name so they never replace the full dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "default_dataset_path"]

DEFAULT_NAME = "default-v3"


def cache_dir() -> Path:
    """The skeletok cache folder: ``~/.cache/skeletok`` (``$XDG_CACHE_HOME/skeletok`` when set)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "skeletok"


def default_dataset_path(max_frames_per_sequence: int | None = None, variant: str = "ms2") -> Path:
    """Path of the default dataset file.

    Args:
        max_frames_per_sequence: when given, the path of the smaller variant with at most that
            many frames per take (``default-v3-max{N}.npz`` beside the full file).
        variant: the training variants (``ms2``: mirrored, 2 shapes per take, the default), added to the
            name when it is not the default (``default-v3-s1.npz``).

    Returns:
        ``$SKELETOK_DATA`` (or ``$SKELETOK_DATA/default-v3.npz`` when it names a folder), else
        ``~/.cache/skeletok/default-v3.npz``.
    """
    env = os.environ.get("SKELETOK_DATA")
    if env:
        path = Path(env).expanduser()
        if path.suffix != ".npz":
            path = path / f"{DEFAULT_NAME}.npz"
    else:
        path = cache_dir() / f"{DEFAULT_NAME}.npz"
    if variant != "ms2":
        path = path.with_name(f"{path.stem}-{variant}.npz")
    if max_frames_per_sequence is not None:
        path = path.with_name(f"{path.stem}-max{int(max_frames_per_sequence)}.npz")
    return path
