"""The up axis of a motion file, from its body: the feet-to-head direction and the upright check.

Readers (:mod:`~skeletok.data.motion.bvh`, :mod:`~skeletok.data.motion.asf_amc`, :mod:`~skeletok.data.motion.arrays`)
find the landmarks with a joint mapping (:mod:`~skeletok.data.motion.mapping`), measure the direction from the
ankles to the head with :func:`landmark_up` and decide or check the up axis with :func:`choose_up`.
"""

from __future__ import annotations

import warnings

import numpy as np

from skeletok.data.motion.mapping import best_mapping, get_mapping
from skeletok.errors import MotionFileError, MotionWarning

__all__ = ["landmark_up", "choose_up"]


def landmark_up(points: np.ndarray, joint_names: list[str], mapping=None) -> np.ndarray | None:
    """The body's feet-to-head direction in the axes of ``points``: a unit ``(3,)`` vector, or ``None``.

    Args:
        points: ``(j, 3)`` (a rest pose) or ``(t, j, 3)`` positions (the median direction over frames).
        joint_names: the ``j`` names.
        mapping: the mapping to find the landmarks with (default: :func:`best_mapping`).

    Returns:
        From the mean of the ankles (else knees) to the highest torso landmark found (``Head``, ``Neck1``,
        ``Neck``, ``Spine1``, ``Spine``); ``None`` when the names give no such pair or the points coincide.
    """
    m = get_mapping(mapping if mapping is not None else best_mapping(joint_names)[0])
    got = m.resolve(joint_names)
    feet = [got[n] for n in ("LeftFoot", "RightFoot") if n in got] or [got[n] for n in ("LeftLeg", "RightLeg")
                                                                        if n in got]
    top = next((got[n] for n in ("Head", "Neck1", "Neck", "Spine1", "Spine") if n in got), None)
    if not feet or top is None:
        return None
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[None] if pts.ndim == 2 else pts
    with np.errstate(all="ignore"):
        v = pts[:, top] - pts[:, feet].mean(axis=1)
        n = np.linalg.norm(v, axis=-1)
        ok = np.isfinite(n) & (n > 0)
        if not ok.any():
            return None
        med = np.median(v[ok] / n[ok, None], axis=0)
        size = np.linalg.norm(med)
    return med / size if np.isfinite(size) and size > 1e-6 else None


_UPRIGHT = 0.5  # cos 60 degrees: the feet-to-head direction's least vertical component for "upright"


def choose_up(direction: np.ndarray | None, up: str, path, what: str = "rest pose") -> str | None:
    """Decide (``up="auto"``) or check (``"y"``/``"z"``) a file's up axis from its feet-to-head direction.

    Args:
        direction: :func:`landmark_up` of the file's points in file axes, or ``None`` (unknown joints).
        up: ``"auto"``, ``"y"`` or ``"z"``.
        path: the file, named in errors and warnings.
        what: where the direction comes from (``"rest pose"`` or ``"frames"``), for the messages.

    Returns:
        ``"y"`` or ``"z"``; ``None`` for ``"auto"`` without a direction (the caller falls back).

    Raises:
        MotionFileError: for ``"auto"`` when the direction is not clearly along +Y or +Z (the message says to
            pass ``up``). An explicit ``up`` that leaves the body not upright only warns
            (:class:`~skeletok.errors.MotionWarning`): a lying or crawling take is not upright.
    """
    if direction is None:
        return None if up == "auto" else up
    d = np.asarray(direction, dtype=np.float64)
    shown = "(" + ", ".join(f"{v:+.2f}" for v in d) + ")"
    if up == "auto":
        axis = 1 if abs(d[1]) >= abs(d[2]) else 2
        name = "yz"[axis - 1]
        if d[axis] >= _UPRIGHT:
            return name
        if abs(d[0]) > max(abs(d[1]), abs(d[2])):
            reason = "the body lies along X (only Y-up and Z-up files are read): re-export it with Y or Z up"
        elif d[axis] <= -_UPRIGHT:
            reason = f"the body is upside down along {name.upper()}: re-export it with +Y or +Z up"
        else:
            reason = ("no axis is clearly up; if this is a lying or crawling take, pass the file's up axis "
                      "(up='y' or 'z', --up y|z)")
        raise MotionFileError(path, f"cannot detect the up axis: the feet-to-head direction in the {what} is "
                                    f"{shown} (file axes); {reason}")
    vertical = d[1] if up == "y" else d[2]
    if vertical < _UPRIGHT:
        tilt = float(np.degrees(np.arccos(np.clip(vertical, -1.0, 1.0))))
        other = "z" if up == "y" else "y"
        warnings.warn(f"{path}: with up={up!r} the body is not upright in the {what}: its feet-to-head direction "
                      f"is {tilt:.0f} degrees from vertical. Unless this is a lying or crawling take, the up axis "
                      f"is wrong: try --up {other} (up={other!r}) or --up auto", MotionWarning, stacklevel=3)
    return up
