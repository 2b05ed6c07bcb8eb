"""read_motion: one entry point for every motion file format, dispatching on the extension.

The readers themselves live beside this module (:mod:`~skeletok.data.motion.bvh`,
:mod:`~skeletok.data.motion.asf_amc`, :mod:`~skeletok.data.motion.arrays`, :mod:`~skeletok.data.motion.deepmimic`)
and import :class:`~skeletok.data.motion.core.Motion` from :mod:`~skeletok.data.motion.core`, never from here, so the
dispatch and the readers form no import circle.
"""

from __future__ import annotations

from pathlib import Path

from skeletok.data.motion.core import Motion

__all__ = ["read_motion"]


def read_motion(path: str | Path, **kwargs) -> Motion:
    """Read any supported motion file, dispatching on the extension.

    ``.bvh`` -> :func:`~skeletok.data.motion.bvh.read_bvh`; ``.amc`` -> :func:`~skeletok.data.motion.asf_amc.read_amc`
    (pass ``asf=``, or the single ``.asf`` beside it is used); ``.npy``/``.npz`` ->
    :func:`~skeletok.data.motion.arrays.read_positions`; ``.txt`` (DeepMimic clip) ->
    :func:`~skeletok.data.motion.deepmimic.read_deepmimic`. Keyword arguments go to that reader; ``up``, ``unit``
    and ``mapping`` (taken by the first three) may be passed for any file: a DeepMimic clip, whose frame and
    unit are fixed, accepts only ``"auto"`` (or ``None``) for ``up`` and ``unit`` and ignores ``mapping``.

    Raises:
        ValueError: for an unknown extension or bad arguments.
        MotionFileError: (a ``ValueError``) naming the file for a missing ASF or anything the reader rejects.
    """
    from skeletok.errors import MotionFileError, file_errors

    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".bvh":
        from skeletok.data.motion.bvh import read_bvh

        return read_bvh(path, **kwargs)
    if ext == ".amc":
        from skeletok.data.motion.asf_amc import read_amc, read_asf

        asf = kwargs.pop("asf", None)
        if asf is None:
            same = path.with_suffix(".asf")
            found = [same] if same.exists() else sorted(path.parent.glob("*.asf"))
            if len(found) != 1:
                raise MotionFileError(path, f"no unique .asf skeleton beside the .amc (found {len(found)}); pass "
                                            "asf= (--asf FILE)")
            asf = found[0]
        if isinstance(asf, (str, Path)):
            asf = read_asf(asf)
        return read_amc(path, asf, **kwargs)
    if ext in (".npy", ".npz"):
        from skeletok.data.motion.arrays import read_positions

        return read_positions(path, **kwargs)
    if ext == ".txt":
        from skeletok.data.motion.deepmimic import read_deepmimic

        for key in ("up", "unit"):
            if kwargs.pop(key, None) not in (None, "auto"):
                raise ValueError(f"{path}: a DeepMimic clip has a fixed frame and unit; {key}= must be 'auto'")
        kwargs.pop("mapping", None)
        with file_errors(path, what="DeepMimic clip"):
            return read_deepmimic(path, **kwargs)
    raise ValueError(f"{path}: unknown motion file extension {ext!r}; expected .bvh, .amc, .npy, .npz or .txt")
