"""Read 2D keypoints the way common detectors write them, as H36M-17 tensors for HiPART.

Shapes: ``n`` people/frames, ``j`` = 17 keypoints, pixel coordinates (origin top-left, y down).

Accepted files:

- **COCO results JSON** (what mmpose, detectron2 and the COCO API write): a list of
  ``{"image_id", "keypoints": [x1, y1, s1, x2, y2, s2, ...], "score", ...}``; 17 COCO keypoints.
- **COCO annotations JSON**: ``{"images": [...], "annotations": [{"keypoints": [...]}, ...]}``; the
  image ``width``/``height`` are taken from ``images`` when present. COCO's visibility flag ``v`` is
  turned into a score (``v > 0`` visible).
- **OpenPose JSON**: ``{"people": [{"pose_keypoints_2d": [...]}]}`` with 17 (COCO order) keypoints.
- **mmpose predictions JSON**: ``[{"instances": [{"keypoints": [[x, y], ...], "keypoint_scores": [...]}]}]``.
- **npz**: ``keypoints (n, 17, 2)`` or ``(n, 17, 3)`` (x, y, score), optional ``scores (n, 17)``,
  ``layout`` (``"coco17"`` or ``"h36m17"``), ``image_size`` ``(2,)`` (width, height).

COCO-17 keypoints are converted with :func:`skeletok.skeleton.coco17_to_h36m17` (its docstring lists
the approximations). A keypoint whose score is below ``score_threshold`` is marked invisible.

A file that cannot be read raises :class:`skeletok.errors.KeypointFileError` (a ``ValueError``) naming the
file and the field; a missing file raises ``FileNotFoundError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skeletok.errors import KeypointFileError, file_errors

__all__ = ["Keypoints2D", "read_keypoints"]

LAYOUTS = ("coco17", "h36m17")


@dataclass
class Keypoints2D:
    """2D keypoints of ``n`` people or frames in H36M-17 order.

    Attributes:
        points: ``(n, 17, 2)`` float32, pixels.
        scores: ``(n, 17)`` float32 detector confidences in [0, 1] (1 where the file has none).
        visible: ``(n, 17)`` bool, ``scores >= score_threshold``.
        image_size: ``(width, height)`` in pixels, or ``None`` when the file does not say.
        source_layout: the layout found in the file, ``"coco17"`` or ``"h36m17"``.
    """

    points: np.ndarray
    scores: np.ndarray
    visible: np.ndarray
    image_size: tuple[float, float] | None
    source_layout: str


def _flat_triplets(values, path: Path, where: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {where} must be numbers (x, y, score triplets)") from None
    if arr.ndim == 2 and arr.shape[1] in (2, 3):
        arr = arr if arr.shape[1] == 3 else np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    elif arr.ndim == 1 and arr.size % 3 == 0:
        arr = arr.reshape(-1, 3)
    else:
        raise ValueError(f"{path}: {where} must hold 17 (x, y, score) triplets, got shape {arr.shape}")
    if arr.shape[0] != 17:
        raise ValueError(f"{path}: {where} has {arr.shape[0]} keypoints, expected 17 (COCO-17 order)")
    return arr


def _parse_json(data, path: Path) -> tuple[list[np.ndarray], tuple[float, float] | None]:
    size = None
    people: list[np.ndarray] = []
    if isinstance(data, dict) and "annotations" in data:
        images = data.get("images") or []
        if images and "width" in images[0] and "height" in images[0]:
            size = (float(images[0]["width"]), float(images[0]["height"]))
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict) or "keypoints" not in ann:
                raise ValueError(f"{path}: annotations[{i}] has no 'keypoints' field")
            trip = _flat_triplets(ann["keypoints"], path, f"annotations[{i}].keypoints")
            trip[:, 2] = (trip[:, 2] > 0).astype(np.float64)
            people.append(trip)
    elif isinstance(data, dict) and "people" in data:
        for i, person in enumerate(data["people"]):
            if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
                raise ValueError(f"{path}: people[{i}] has no 'pose_keypoints_2d' field")
            people.append(_flat_triplets(person["pose_keypoints_2d"], path, f"people[{i}].pose_keypoints_2d"))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if isinstance(item, dict) and "keypoints" in item:
                people.append(_flat_triplets(item["keypoints"], path, f"[{i}].keypoints"))
            elif isinstance(item, dict) and "instances" in item:
                for k, inst in enumerate(item["instances"]):
                    if not isinstance(inst, dict) or "keypoints" not in inst:
                        raise ValueError(f"{path}: [{i}].instances[{k}] has no 'keypoints' field")
                    try:
                        xy = np.asarray(inst["keypoints"], dtype=np.float64)
                        sc = np.asarray(inst.get("keypoint_scores", np.ones(len(xy))), dtype=np.float64)
                    except (TypeError, ValueError):
                        raise ValueError(f"{path}: [{i}].instances[{k}] keypoints must be numbers") from None
                    if xy.ndim != 2 or xy.shape[-1] != 2 or sc.shape != (xy.shape[0],):
                        raise ValueError(
                            f"{path}: [{i}].instances[{k}] must have keypoints (17, 2) and keypoint_scores (17,), "
                            f"got {xy.shape} and {sc.shape}"
                        )
                    people.append(_flat_triplets(np.concatenate([xy, sc[:, None]], axis=1), path, f"[{i}].instances[{k}]"))
            else:
                raise ValueError(f"{path}: item [{i}] has neither 'keypoints' (COCO results) nor 'instances' (mmpose)")
    else:
        raise ValueError(
            f"{path}: unrecognised JSON layout; expected a COCO results list, a COCO annotations dict, "
            "an OpenPose dict with 'people', or an mmpose list with 'instances'"
        )
    return people, size


def read_keypoints(
    path: str | Path,
    *,
    layout: str | None = None,
    score_threshold: float = 0.3,
    image_size: tuple[float, float] | None = None,
) -> Keypoints2D:
    """Read a keypoint file (see the module docstring for the formats) into H36M-17 order.

    Args:
        path: a ``.json`` or ``.npz`` file.
        layout: ``"coco17"`` or ``"h36m17"``; JSON files are COCO-17 unless given; npz files may say in
            their ``layout`` key.
        score_threshold: keypoints with a lower score are marked invisible.
        image_size: ``(width, height)`` in pixels, overriding what the file says.

    Returns:
        :class:`Keypoints2D` in H36M-17 order.

    Raises:
        FileNotFoundError: the file does not exist.
        KeypointFileError: (a ``ValueError``) the file cannot be parsed; the message names the file and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keypoint file not found: {path}")
    with file_errors(path, KeypointFileError, "keypoint file"), np.errstate(over="ignore", invalid="ignore"):
        return _read_keypoints(path, layout, score_threshold, image_size)


def _read_keypoints(path: Path, layout, score_threshold, image_size) -> Keypoints2D:
    from skeletok.skeleton import coco17_to_h36m17

    size = None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        try:
            people, size = _parse_json(data, path)
        except (TypeError, KeyError, IndexError, AttributeError) as err:
            raise ValueError(f"{path}: malformed keypoint JSON: a field has the wrong type ({err!r})") from None
        if not people:
            raise ValueError(f"{path}: no people/keypoints found")
        arr = np.stack(people)
        found = layout or "coco17"
    elif path.suffix.lower() == ".npz":
        try:
            npz = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises several types for corrupt archives
            raise ValueError(f"{path}: not a readable npz archive ({err})") from None
        if "keypoints" not in npz.files:
            raise ValueError(f"{path}: missing key 'keypoints'; found {sorted(npz.files)}")
        kp = np.asarray(npz["keypoints"], dtype=np.float64)
        if kp.ndim == 2:
            kp = kp[None]
        if kp.ndim != 3 or kp.shape[1] != 17 or kp.shape[2] not in (2, 3):
            raise ValueError(f"{path}: 'keypoints' must have shape (n, 17, 2|3), got {kp.shape}")
        if kp.shape[2] == 2:
            sc = np.asarray(npz["scores"], dtype=np.float64) if "scores" in npz.files else np.ones(kp.shape[:2])
            if sc.shape != kp.shape[:2]:
                raise ValueError(f"{path}: 'scores' must have shape {kp.shape[:2]}, got {sc.shape}")
            kp = np.concatenate([kp, sc[..., None]], axis=-1)
        arr = kp
        found = layout or (str(npz["layout"]) if "layout" in npz.files else "h36m17")
        if "image_size" in npz.files:
            wh = np.asarray(npz["image_size"], dtype=np.float64).reshape(-1)
            if wh.size != 2 or not (np.isfinite(wh).all() and (wh > 0).all()):
                raise ValueError(f"{path}: 'image_size' must be (width, height) > 0, got {wh.tolist()}")
            size = (float(wh[0]), float(wh[1]))
    else:
        raise ValueError(f"{path}: unsupported keypoint file type {path.suffix!r}; expected .json or .npz")
    if found not in LAYOUTS:
        raise ValueError(f"{path}: layout must be one of {list(LAYOUTS)}, got {found!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: keypoints contain NaN or inf")
    points, scores = arr[..., :2], arr[..., 2]
    if found == "coco17":
        points, scores = coco17_to_h36m17(points, scores)
    points = np.asarray(points, dtype=np.float32)
    scores = np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0)
    return Keypoints2D(
        points=points,
        scores=scores,
        visible=scores >= score_threshold,
        image_size=image_size or size,
        source_layout=found,
    )
