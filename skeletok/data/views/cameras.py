"""Pinhole cameras: world -> camera -> pixels, screen normalisation, Human3.6M-like rigs.

Conventions (``docs/concepts.md``): world 3D in metres, Z-up; a camera maps a world point to its
own frame by ``X_cam = R @ X_world + t`` (metres) with OpenCV axes, x right, y down, z forward;
pixels have their origin at the top-left corner, x right, y down. Networks see pixels normalised
by the image width, ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w`` (the Human3.6M convention).

The rigs look at a *target*: the builder shifts every sequence horizontally so that its mean root
lies above the target (heights above the ground are kept), so one rig frames every sequence, even ones that move
a lot (climbing); see :mod:`skeletok.data.sets.build`.

Shapes: ``j`` points, ``c`` coordinates; ``...`` any leading axes. Arrays are numpy float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Camera",
    "normalize_screen",
    "unnormalize_screen",
    "look_at",
    "h36m_like_rig",
    "random_cameras",
    "cameras_to_arrays",
    "cameras_from_arrays",
    "frame_camera",
]


def _vec(name: str, value, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (size,) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be {size} finite numbers, got shape {arr.shape}: {value!r}")
    return arr


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with optional Human3.6M-style lens distortion.

    Args:
        R: ``(3, 3)`` rotation, world -> camera (rows are the camera's x right, y down,
            z forward axes written in world coordinates).
        t: ``(3,)`` translation in metres, ``X_cam = R @ X_world + t``.
        focal: ``(2,)`` focal lengths ``(fx, fy)`` in pixels.
        centre: ``(2,)`` principal point ``(cx, cy)`` in pixels.
        size: image ``(width, height)`` in pixels.
        radial: optional ``(3,)`` radial distortion ``(k1, k2, k3)``.
        tangential: optional ``(2,)`` tangential distortion ``(p1, p2)``; distortion follows the
            Human3.6M calibration model as used by VideoPose3D (see :meth:`project_camera`).
        name: free label, e.g. the Human3.6M camera id.

    Raises:
        ValueError: if a parameter has the wrong shape, is not finite, ``R`` is not a rotation
            or a focal length / image size is not positive.
    """

    R: np.ndarray
    t: np.ndarray
    focal: np.ndarray
    centre: np.ndarray
    size: tuple[int, int]
    radial: np.ndarray | None = None
    tangential: np.ndarray | None = None
    name: str = field(default="")

    def __post_init__(self) -> None:
        R = np.asarray(self.R, dtype=np.float64)
        if R.shape != (3, 3) or not np.isfinite(R).all():
            raise ValueError(f"R must be a finite (3, 3) rotation, got shape {R.shape}")
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
            raise ValueError(f"R must be a rotation (orthonormal, det +1), got det {np.linalg.det(R):.4f}")
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", _vec("t", self.t, 3))
        object.__setattr__(self, "focal", _vec("focal", self.focal, 2))
        object.__setattr__(self, "centre", _vec("centre", self.centre, 2))
        if (self.focal <= 0).any():
            raise ValueError(f"focal must be positive pixels, got {self.focal.tolist()}")
        size = tuple(int(s) for s in np.asarray(self.size).reshape(-1))
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size must be a positive (width, height) in pixels, got {self.size!r}")
        object.__setattr__(self, "size", size)
        if self.radial is not None:
            object.__setattr__(self, "radial", _vec("radial", self.radial, 3))
        if self.tangential is not None:
            object.__setattr__(self, "tangential", _vec("tangential", self.tangential, 2))

    @property
    def position(self) -> np.ndarray:
        """The camera centre in world coordinates, ``(3,)`` metres: ``-R^T t``."""
        return -self.R.T @ self.t

    @property
    def distorted(self) -> bool:
        """Whether the camera has any lens distortion."""
        return self.radial is not None or self.tangential is not None

    def to_camera(self, points_world) -> np.ndarray:
        """World points ``(..., j, 3)`` metres -> camera frame ``(..., j, 3)`` metres."""
        X = _points(points_world, "points_world", 3)
        return X @ self.R.T + self.t

    def project_camera(self, points_camera) -> np.ndarray:
        """Camera-frame points ``(..., j, 3)`` metres -> pixels ``(..., j, 2)``.

        Without distortion this is ``f * (x / z, y / z) + c``. With distortion it is the
        Human3.6M model as implemented in VideoPose3D's ``project_to_2d``: normalised
        coordinates ``a`` clipped to ``[-1, 1]``, ``r2 = |a|^2``,
        ``a' = a * (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p . a) + p * r2``, pixels ``f * a' + c``.
        Points at or behind the camera (``z <= 0``) give non-finite or mirrored pixels; the
        rigs here keep the subject well in front.
        """
        X = _points(points_camera, "points_camera", 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = X[..., :2] / X[..., 2:3]
        if self.distorted:
            a = np.clip(a, -1.0, 1.0)
            k = self.radial if self.radial is not None else np.zeros(3)
            p = self.tangential if self.tangential is not None else np.zeros(2)
            r2 = (a**2).sum(-1, keepdims=True)
            radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
            tan = (a * p).sum(-1, keepdims=True)
            a = a * (radial + tan) + p * r2
        return a * self.focal + self.centre

    def project(self, points_world) -> np.ndarray:
        """World points ``(..., j, 3)`` metres -> pixels ``(..., j, 2)`` (origin top-left)."""
        return self.project_camera(self.to_camera(points_world))


def _points(x, name: str, c: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != c:
        raise ValueError(f"{name} must have shape (..., j, {c}), got {arr.shape}")
    return arr


def normalize_screen(pix, w: float, h: float) -> np.ndarray:
    """Pixels ``(..., 2)`` -> network coordinates: ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w``.

    ``w`` and ``h`` may be scalars or arrays broadcasting against ``pix[..., 0]``. The result
    keeps the aspect ratio: ``u`` spans ``[-1, 1]`` across the width, ``v`` spans
    ``[-h / w, h / w]``.
    """
    pix = _points(pix, "pix", 2)
    w = np.asarray(w, dtype=np.float64)[..., None]
    h = np.asarray(h, dtype=np.float64)[..., None]
    if (w <= 0).any() or (h <= 0).any():
        raise ValueError(f"w and h must be positive image sizes, got w={w.squeeze()}, h={h.squeeze()}")
    offset = np.concatenate(np.broadcast_arrays(np.ones_like(h), h / w), axis=-1)
    return pix / w * 2 - offset


def unnormalize_screen(uv, w: float, h: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen`: network coordinates ``(..., 2)`` -> pixels."""
    uv = _points(uv, "uv", 2)
    w = np.asarray(w, dtype=np.float64)[..., None]
    h = np.asarray(h, dtype=np.float64)[..., None]
    if (w <= 0).any() or (h <= 0).any():
        raise ValueError(f"w and h must be positive image sizes, got w={w.squeeze()}, h={h.squeeze()}")
    offset = np.concatenate(np.broadcast_arrays(np.ones_like(h), h / w), axis=-1)
    return (uv + offset) * w / 2


def look_at(eye, target, *, focal=1145.0, size=(1000, 1000), centre=None, up=(0.0, 0.0, 1.0), name="") -> Camera:
    """A camera at ``eye`` (metres) looking at ``target`` with the world's ``up`` pointing up.

    Args:
        eye: ``(3,)`` camera centre in world metres.
        target: ``(3,)`` point on the optical axis, world metres.
        focal: focal length in pixels (scalar or ``(fx, fy)``).
        size: image ``(width, height)`` in pixels.
        centre: principal point in pixels; the image centre when ``None``.
        up: world up direction (Z-up by default); must not be parallel to the viewing direction.
        name: label of the camera.
    """
    eye, target, up = _vec("eye", eye, 3), _vec("target", target, 3), _vec("up", up, 3)
    forward = target - eye
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError(f"eye and target must differ, got both {eye.tolist()}")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        raise ValueError(f"up {up.tolist()} must not be parallel to the viewing direction {forward.tolist()}")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    w, h = size
    centre = (w / 2.0, h / 2.0) if centre is None else centre
    return Camera(R=R, t=-R @ eye, focal=np.broadcast_to(np.asarray(focal, float), (2,)), centre=centre,
                  size=(w, h), name=name)


def h36m_like_rig(
    center=(0.0, 0.0, 0.9),
    *,
    azimuths=(70.0, -70.0, 110.0, -110.0),
    distances=(5.2, 5.3, 5.4, 4.6),
    heights=(1.55, 1.6, 1.5, 1.55),
    root_height: float = 0.9,
    focal: float = 1145.0,
    sizes=((1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)),
) -> list[Camera]:
    """Four pinhole cameras placed around the subject like Human3.6M's.

    The defaults are round values of the same magnitude as Human3.6M's studio set-up (no calibration data
    is copied): cameras at azimuths of about +-70 and +-110 degrees, 4.6-5.4 m from the subject horizontally,
    1.5-1.6 m above the floor, focal length about 1,145 px, images of 1,000 x 1,000/1,002 px,
    all looking at the subject. No lens distortion.

    Args:
        center: ``(3,)`` the point every camera looks at, world metres (the subject's mean root
            horizontally, a standing pelvis height vertically, in the builder).
        azimuths: per-camera azimuth in degrees, counter-clockwise from +x around +z.
        distances: per-camera horizontal distance from ``center`` in metres.
        heights: per-camera height above the floor in metres for a subject whose root is at
            ``root_height``; the rig moves up and down with ``center[2] - root_height``.
        root_height: usual standing root (pelvis) height in metres.
        focal: focal length in pixels.
        sizes: per-camera image ``(width, height)`` in pixels.

    Returns:
        One :class:`Camera` per azimuth.
    """
    center = _vec("center", center, 3)
    n = len(azimuths)
    if not (len(distances) == len(heights) == len(sizes) == n):
        raise ValueError(
            f"azimuths, distances, heights and sizes must have one entry per camera, got lengths "
            f"{n}, {len(distances)}, {len(heights)}, {len(sizes)}"
        )
    cams = []
    for i, (az, dist, height, size) in enumerate(zip(azimuths, distances, heights, sizes)):
        a = np.deg2rad(az)
        eye = center + np.array([dist * np.cos(a), dist * np.sin(a), height - root_height])
        cams.append(look_at(eye, center, focal=focal, size=size, name=f"rig{i}"))
    return cams


def random_cameras(
    rng: np.random.Generator,
    n: int,
    center=(0.0, 0.0, 0.9),
    *,
    azimuth=(-180.0, 180.0),
    elevation=(-5.0, 25.0),
    distance=(3.5, 6.5),
    focal=(1000.0, 1300.0),
    size=(1000, 1000),
) -> list[Camera]:
    """``n`` random cameras looking at ``center`` (augmentation of the viewpoint).

    Azimuth (degrees around +z), elevation (degrees above the horizontal through ``center``),
    distance (metres from ``center``) and focal length (pixels) are drawn uniformly from the
    given ``(low, high)`` ranges with ``rng``; images are ``size`` pixels.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of cameras, got {n}")
    center = _vec("center", center, 3)
    cams = []
    for i in range(int(n)):
        az = np.deg2rad(rng.uniform(*azimuth))
        el = np.deg2rad(rng.uniform(*elevation))
        dist = rng.uniform(*distance)
        offset = dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        cams.append(look_at(center + offset, center, focal=rng.uniform(*focal), size=size, name=f"random{i}"))
    return cams


def cameras_to_arrays(cameras: list[Camera]) -> dict[str, np.ndarray]:
    """Stack cameras into the dataset file's keys ``cam_R (c, 3, 3)``, ``cam_t``, ``cam_f``,
    ``cam_c``, ``cam_size (c, 2)`` (float32), plus ``cam_radial (c, 3)`` and
    ``cam_tangential (c, 2)`` (zeros where a camera has no distortion)."""
    if not cameras:
        raise ValueError("cameras must hold at least one Camera, got an empty list")
    return {
        "cam_R": np.stack([c.R for c in cameras]).astype(np.float32),
        "cam_t": np.stack([c.t for c in cameras]).astype(np.float32),
        "cam_f": np.stack([c.focal for c in cameras]).astype(np.float32),
        "cam_c": np.stack([c.centre for c in cameras]).astype(np.float32),
        "cam_size": np.array([c.size for c in cameras], dtype=np.float32),
        "cam_radial": np.stack([c.radial if c.radial is not None else np.zeros(3) for c in cameras]).astype(np.float32),
        "cam_tangential": np.stack(
            [c.tangential if c.tangential is not None else np.zeros(2) for c in cameras]
        ).astype(np.float32),
    }


def cameras_from_arrays(arrays) -> list[Camera]:
    """Inverse of :func:`cameras_to_arrays` (distortion keys optional)."""
    n = len(arrays["cam_R"])
    radial = arrays["cam_radial"] if "cam_radial" in arrays else np.zeros((n, 3))
    tangential = arrays["cam_tangential"] if "cam_tangential" in arrays else np.zeros((n, 2))
    cams = []
    for i in range(n):
        k, p = np.asarray(radial[i], float), np.asarray(tangential[i], float)
        cams.append(Camera(
            R=arrays["cam_R"][i], t=arrays["cam_t"][i], focal=arrays["cam_f"][i], centre=arrays["cam_c"][i],
            size=tuple(int(round(s)) for s in arrays["cam_size"][i]),
            radial=k if k.any() else None, tangential=p if p.any() else None, name=f"cam{i}",
        ))
    return cams


def frame_camera(arrays, frame: int, camera: int) -> Camera:
    """The camera ``camera`` of a dataset file as it filmed frame ``frame``.

    The file's ``cam_*`` keys, with the frame's sequence's own extrinsics when the file has
    ``sequence_cam_R``/``sequence_cam_t`` (Human3.6M), moved by ``rig_shift[frame]`` when the file's cameras
    follow the subject (:mod:`skeletok.data.views.placement`). Its projection of ``world_*[frame]`` is
    ``pix_*[frame, camera]``.
    """
    cam = cameras_from_arrays(arrays)[camera]
    R, t = cam.R, cam.t
    if "sequence_cam_R" in arrays:
        s = int(arrays["sequence"][frame])
        R = np.asarray(arrays["sequence_cam_R"][s, camera], dtype=np.float64)
        t = np.asarray(arrays["sequence_cam_t"][s, camera], dtype=np.float64)
    if "rig_shift" in arrays:  # a rig moved by s films X as the unmoved rig films X - s
        t = t - R @ np.asarray(arrays["rig_shift"][frame], dtype=np.float64)
    return Camera(R=R, t=t, focal=cam.focal, centre=cam.centre, size=cam.size, radial=cam.radial,
                  tangential=cam.tangential, name=cam.name)
