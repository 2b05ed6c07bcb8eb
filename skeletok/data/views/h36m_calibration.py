"""Human3.6M camera calibration, read from a file that the user supplies.

skeletok ships no Human3.6M calibration numbers: they belong to the dataset (academic licence).
Users who have Human3.6M pass the calibration file to :func:`load_h36m_cameras`,
:func:`h36m_cameras`, :func:`~skeletok.data.sets.h36m.h36m_to_dataset` and
``skeletok data from-h36m --cameras FILE``. Two JSON layouts are read (detected from the type of
``"intrinsics"``):

(a) VideoPose3D's layout (a JSON dump of ``h36m_cameras_intrinsic_params`` and
``h36m_cameras_extrinsic_params`` from its ``common/h36m_dataset.py``): per camera the principal
point and focal length in pixels, radial ``(k1, k2, k3)`` and tangential ``(p1, p2)`` distortion and
the image size; per subject one entry per camera (same order) with the quaternion ``(w, x, y, z)``
rotating camera axes into the world and the camera centre ``translation`` in world millimetres.
Subjects whose entries are all empty (S2, S3, S4 there) are skipped:

    {"intrinsics": [{"id": "54138969", "center": [cx, cy], "focal_length": [fx, fy],
                     "radial_distortion": [k1, k2, k3], "tangential_distortion": [p1, p2],
                     "res_w": 1000, "res_h": 1002}, ...],
     "extrinsics": {"S1": [{"orientation": [w, x, y, z], "translation": [Cx, Cy, Cz]}, ...], ...}}

(b) ``camera-parameters.json`` as written by the Human3.6M download tools (e.g. ``h36m-fetch``,
from the official ``metadata.xml``): per camera the ``3 x 3`` calibration matrix and OpenCV
distortion ``[k1, k2, p1, p2, k3]``; per subject and camera the world -> camera rotation ``R`` and
translation ``t`` in millimetres (``X_cam = R X_world + t``). The layout has no image size: an
optional ``"res_w"``/``"res_h"`` beside ``calibration_matrix`` gives it, otherwise
:data:`H36M_IMAGE_SIZES` (the videos' frame sizes) does:

    {"intrinsics": {"54138969": {"calibration_matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                                 "distortion": [k1, k2, p1, p2, k3]}, ...},
     "extrinsics": {"S1": {"54138969": {"R": [[...], [...], [...]], "t": [[tx], [ty], [tz]]}, ...}, ...}}

Every camera of :data:`CAMERA_IDS` must be present; cameras come back in that order (the view
order of VideoPose3D's 2D files). Units out: metres and pixels (:class:`~skeletok.data.views.cameras.Camera`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from skeletok.data.views.cameras import Camera

__all__ = ["CAMERA_IDS", "H36M_IMAGE_SIZES", "CALIBRATION_HELP", "load_h36m_cameras", "h36m_cameras",
           "resolve_calibration"]

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
# Frame sizes (width, height) of the four Human3.6M videos, for layout (b), which has none.
H36M_IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
                    "60457274": (1000, 1002)}
CALIBRATION_HELP = (
    "skeletok does not ship the Human3.6M camera calibration (its licence does not allow redistribution); "
    "pass the calibration file of your Human3.6M copy: camera-parameters.json as written by the Human3.6M "
    "download tools (e.g. h36m-fetch, from the release's metadata.xml), or a JSON dump of VideoPose3D's "
    "h36m_cameras_intrinsic_params/h36m_cameras_extrinsic_params (see skeletok.data.views.h36m_calibration)"
)


class _Field:
    """Reads named fields of a parsed JSON file, raising ``ValueError`` with the file and field path."""

    def __init__(self, source: str):
        self.source = source

    def error(self, field: str, message: str) -> ValueError:
        return ValueError(f"{self.source}: field {field!r} {message}")

    def get(self, obj, key, field: str):
        if not isinstance(obj, dict):
            raise self.error(field.rsplit(".", 1)[0], f"must be a JSON object, got {type(obj).__name__}")
        if key not in obj:
            raise self.error(field, "is missing")
        return obj[key]

    def numbers(self, value, field: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(field, f"must be numbers of shape {shape}, got {value!r}") from None
        if arr.size != int(np.prod(shape)) or not np.isfinite(arr).all():
            raise self.error(field, f"must be {int(np.prod(shape))} finite numbers {shape}, got shape {arr.shape}")
        return arr.reshape(shape)

    def camera(self, field: str, **kwargs) -> Camera:
        try:
            return Camera(**kwargs)
        except ValueError as err:
            raise self.error(field, f"gives an invalid camera: {err}") from None


def _quaternion_matrix(q) -> np.ndarray:
    """Rotation matrix of a ``(w, x, y, z)`` quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _size(f: _Field, intr: dict, cam_id: str, field: str) -> tuple[int, int]:
    if "res_w" in intr or "res_h" in intr or cam_id not in H36M_IMAGE_SIZES:
        w = f.numbers(f.get(intr, "res_w", f"{field}.res_w"), f"{field}.res_w", (1,))[0]
        h = f.numbers(f.get(intr, "res_h", f"{field}.res_h"), f"{field}.res_h", (1,))[0]
        return int(w), int(h)
    return H36M_IMAGE_SIZES[cam_id]


def _layout_videopose3d(f: _Field, intrinsics: list, extrinsics: dict) -> dict[str, list[Camera]]:
    intr_by_id, ids = {}, []
    for i, intr in enumerate(intrinsics):
        field = f"intrinsics[{i}]"
        cam_id = str(f.get(intr, "id", f"{field}.id"))
        ids.append(cam_id)
        intr_by_id[cam_id] = dict(
            focal=f.numbers(f.get(intr, "focal_length", f"{field}.focal_length"), f"{field}.focal_length", (2,)),
            centre=f.numbers(f.get(intr, "center", f"{field}.center"), f"{field}.center", (2,)),
            radial=f.numbers(f.get(intr, "radial_distortion", f"{field}.radial_distortion"),
                             f"{field}.radial_distortion", (3,)),
            tangential=f.numbers(f.get(intr, "tangential_distortion", f"{field}.tangential_distortion"),
                                 f"{field}.tangential_distortion", (2,)),
            size=_size(f, intr, cam_id, field), name=cam_id,
        )
    _check_ids(f, ids, "intrinsics[*].id")
    out = {}
    for subject, entries in extrinsics.items():
        field = f"extrinsics.{subject}"
        if not isinstance(entries, list) or len(entries) != len(ids):
            raise f.error(field, f"must be a list of {len(ids)} camera entries (intrinsics order), got {entries!r:.80}")
        if all(isinstance(e, dict) and not e for e in entries):
            continue  # no extrinsics for this subject (S2, S3, S4 in VideoPose3D)
        cams = {}
        for i, (cam_id, extr) in enumerate(zip(ids, entries)):
            q = f.numbers(f.get(extr, "orientation", f"{field}[{i}].orientation"), f"{field}[{i}].orientation", (4,))
            if np.linalg.norm(q) < 1e-6:
                raise f.error(f"{field}[{i}].orientation", f"must be a unit quaternion (w, x, y, z), got {q.tolist()}")
            centre_mm = f.numbers(f.get(extr, "translation", f"{field}[{i}].translation"),
                                  f"{field}[{i}].translation", (3,))
            R = _quaternion_matrix(q).T  # camera -> world rotation, transposed
            cams[cam_id] = f.camera(f"{field}[{i}]", R=R, t=-R @ centre_mm / 1000.0, **intr_by_id[cam_id])
        out[str(subject)] = [cams[c] for c in CAMERA_IDS]
    return out


def _layout_camera_parameters(f: _Field, intrinsics: dict, extrinsics: dict) -> dict[str, list[Camera]]:
    _check_ids(f, list(intrinsics), "intrinsics")
    intr_by_id = {}
    for cam_id in CAMERA_IDS:
        field = f"intrinsics.{cam_id}"
        intr = intrinsics[cam_id]
        K = f.numbers(f.get(intr, "calibration_matrix", f"{field}.calibration_matrix"),
                      f"{field}.calibration_matrix", (3, 3))
        if abs(K[0, 1]) > 1e-9 or abs(K[1, 0]) > 1e-9 or not np.allclose(K[2], [0.0, 0.0, 1.0]):
            raise f.error(f"{field}.calibration_matrix", f"must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "
                          f"got {K.tolist()}")
        dist = f.numbers(f.get(intr, "distortion", f"{field}.distortion"), f"{field}.distortion", (5,))
        intr_by_id[cam_id] = dict(focal=K[[0, 1], [0, 1]], centre=K[[0, 1], [2, 2]], radial=dist[[0, 1, 4]],
                                  tangential=dist[[2, 3]], size=_size(f, intr, cam_id, field), name=cam_id)
    out = {}
    for subject, entries in extrinsics.items():
        field = f"extrinsics.{subject}"
        if not isinstance(entries, dict):
            raise f.error(field, f"must be a JSON object camera id -> {{R, t}}, got {type(entries).__name__}")
        cams = []
        for cam_id in CAMERA_IDS:
            extr = f.get(entries, cam_id, f"{field}.{cam_id}")
            R = f.numbers(f.get(extr, "R", f"{field}.{cam_id}.R"), f"{field}.{cam_id}.R", (3, 3))
            t_mm = f.numbers(f.get(extr, "t", f"{field}.{cam_id}.t"), f"{field}.{cam_id}.t", (3,))
            cams.append(f.camera(f"{field}.{cam_id}", R=R, t=t_mm / 1000.0, **intr_by_id[cam_id]))
        out[str(subject)] = cams
    return out


def _check_ids(f: _Field, ids: list[str], field: str) -> None:
    missing = [c for c in CAMERA_IDS if c not in ids]
    if missing:
        raise f.error(field, f"lacks cameras {missing}: expected the four Human3.6M cameras {list(CAMERA_IDS)}, "
                      f"got {ids}")


def _parse(data, source: str) -> dict[str, list[Camera]]:
    f = _Field(source)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object with 'intrinsics' and 'extrinsics', "
                         f"got {type(data).__name__}")
    intrinsics = f.get(data, "intrinsics", "intrinsics")
    extrinsics = f.get(data, "extrinsics", "extrinsics")
    if not isinstance(extrinsics, dict):
        raise f.error("extrinsics", f"must be a JSON object subject -> cameras, got {type(extrinsics).__name__}")
    if isinstance(intrinsics, list):
        cams = _layout_videopose3d(f, intrinsics, extrinsics)
    elif isinstance(intrinsics, dict):
        cams = _layout_camera_parameters(f, intrinsics, extrinsics)
    else:
        raise f.error("intrinsics", f"must be a list (VideoPose3D layout) or an object camera id -> parameters "
                      f"(camera-parameters.json layout), got {type(intrinsics).__name__}")
    if not cams:
        raise f.error("extrinsics", "holds no subject with camera extrinsics")
    return cams


def load_h36m_cameras(path) -> dict[str, list[Camera]]:
    """Read a Human3.6M calibration file (either layout of the module docstring).

    Args:
        path: the JSON calibration file of the user's Human3.6M copy.

    Returns:
        subject (``"S1"``, ...) -> the 4 :class:`~skeletok.data.views.cameras.Camera` of that subject in
        :data:`CAMERA_IDS` order, metres and pixels, with lens distortion.

    Raises:
        FileNotFoundError: if ``path`` does not exist (the message says where the file comes from).
        ValueError: for a file that is not JSON (naming the line) or lacks a field or has a bad
            value (naming the field, e.g. ``intrinsics[1].focal_length`` or ``extrinsics.S1.54138969.R``).
    """
    if path is None:
        raise ValueError(f"the Human3.6M camera calibration file is required. {CALIBRATION_HELP}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Human3.6M calibration file {str(path)!r} does not exist. {CALIBRATION_HELP}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a JSON text file (not UTF-8)") from None
    return _parse(data, str(path))


def resolve_calibration(calibration) -> tuple[dict[str, list[Camera]], str]:
    """``(subject -> cameras, description)`` of a calibration path, parsed JSON dict or loaded mapping."""
    if isinstance(calibration, dict) and calibration and all(
            isinstance(v, list) and v and all(isinstance(c, Camera) for c in v) for v in calibration.values()):
        return calibration, "the loaded calibration"
    if isinstance(calibration, dict):
        return _parse(calibration, "calibration dict"), "calibration dict"
    return load_h36m_cameras(calibration), str(calibration)


def h36m_cameras(subject: str, *, calibration, distortion: bool = True) -> list[Camera]:
    """The 4 calibrated Human3.6M cameras of a subject (in :data:`CAMERA_IDS` order).

    Args:
        subject: e.g. ``"S9"``.
        calibration: the calibration file's path, its parsed JSON (a dict in either layout) or the
            result of :func:`load_h36m_cameras` (to read the file once for many subjects).
        distortion: keep the lens distortion (``False`` drops it: pure pinhole cameras).

    Raises:
        ValueError: for a subject without extrinsics in the calibration, or a malformed calibration.
    """
    cams, source = resolve_calibration(calibration)
    if subject not in cams:
        raise ValueError(f"subject must be one with camera extrinsics in {source}: {sorted(cams)}, got {subject!r}")
    if distortion:
        return list(cams[subject])
    return [dataclasses.replace(c, radial=None, tangential=None) for c in cams[subject]]
