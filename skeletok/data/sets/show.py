"""Pictures of one dataset frame: the posed body mesh with its 17 / 48 / 96 points, in 2D and 3D.

The dataset file does not hold meshes; :func:`posed_mesh` rebuilds the frame's mesh from the
sequence's source (``sequence_source``, ``sequence_mapping``, ``sequence_shape``, written by the
builder): the committed motion assets or the mocap file a ``from-mocap`` build read. The row's frame of
the source is ``source_frame`` (a capped build keeps frames evenly spaced over each take, so row ``i`` of
a sequence is not frame ``i``), and training variants are mirrored and resized as recorded
(``sequence_mirrored``, ``sequence_scale``).

Shapes: ``v`` vertices, ``j`` points of a level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skeletok.data.motion.variants import mirror_motion
from skeletok.data.sets.build import ASSET_SOURCE, RIG_TARGET
from skeletok.data.views.cameras import frame_camera
from skeletok.data.sets.fileformat import load_dataset
from skeletok.skeleton import H36M_17

__all__ = ["posed_mesh", "show_frame"]



def _find_motion(arrays: dict, s: int):
    # the take a sequence was made from (training variants, take~[mirror~]shapeK, share it)
    name = str(arrays["sequence_take"][s] if "sequence_take" in arrays else arrays["sequence_names"][s])
    source = str(arrays["sequence_source"][s])
    if source == ASSET_SOURCE:
        from skeletok.data.motion.assets import load_motion_assets

        for motion in load_motion_assets():
            if motion.name == name:
                return motion
        raise ValueError(f"sequence {name!r} is not among the committed motion assets")
    from skeletok.data.motion.read import read_motion

    source, _, asf = source.partition("?asf=")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"the source of sequence {name!r}, {source!r}, no longer exists")
    motion = read_motion(path, **({"asf": asf} if asf else {}))
    motion.name = name
    return motion


def posed_mesh(arrays: dict, frame: int, body=None) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild the body mesh of one dataset frame, in the file's world frame.

    Args:
        arrays: a loaded dataset (:func:`~skeletok.data.sets.fileformat.load_dataset`) written by
            skeletok's builder (it needs ``sequence_source``, ``sequence_mapping``,
            ``sequence_shape`` and ``sequence_offset``).
        frame: frame index in ``[0, n)``.
        body: the :class:`~skeletok.data.body.model.BodyModel`; the committed body when ``None``.

    Returns:
        ``(vertices (v, 3) metres, faces (f, 3))``.

    Raises:
        ValueError: if the file lacks the source keys or the source cannot be found, or if a file written before
            ``source_frame`` existed does not tell which source frame (capped take, dropped frames) or which
            variant (mirrored, resized) the row is.
    """
    from skeletok.data.body.model import BodyModel
    from skeletok.data.sets.build import CHUNK, _resolve_mapping
    from skeletok.data.motion.retarget import retarget

    missing = [k for k in ("sequence_source", "sequence_mapping", "sequence_shape", "sequence_offset")
               if k not in arrays]
    if missing:
        raise ValueError(f"the dataset has no mesh source (missing keys {missing}); only files written by "
                         "`skeletok data build` / `from-mocap` can show the body mesh (use --no-mesh / mesh=False)")
    body = BodyModel.load() if body is None else body
    frame = int(frame)
    s = int(arrays["sequence"][frame])
    name = str(arrays["sequence_names"][s])
    motion = _find_motion(arrays, s)
    fps = float(arrays["fps"])
    if abs(motion.fps - fps) > 1e-6:
        motion = motion.resample(fps)
    rows = np.flatnonzero(np.asarray(arrays["sequence"]) == s)
    if "source_frame" in arrays:
        source = int(arrays["source_frame"][frame])
    elif len(rows) == motion.num_frames:  # an older file: row i of an uncut sequence is frame i
        source = int(frame - rows[0])
    else:
        raise ValueError(f"sequence {name!r} has {len(rows)} frames in the file but its source has "
                         f"{motion.num_frames} at {fps:g} fps (built with --max-frames, or frames out of view were "
                         "dropped), and the file has no 'source_frame' key saying which source frame each row is "
                         "(written before skeletok recorded it): rebuild the file to show its mesh")
    if not 0 <= source < motion.num_frames:
        raise ValueError(f"source_frame {source} of row {frame} is outside sequence {name!r}'s source "
                         f"({motion.num_frames} frames at {fps:g} fps): the source changed since the file was built")
    if "sequence_mirrored" in arrays:
        mirrored, size = bool(arrays["sequence_mirrored"][s]), float(arrays["sequence_scale"][s])
    elif "~" in name:  # the builder names training variants take~[mirror~]shapeK
        raise ValueError(f"sequence {name!r} is a training variant (mirrored or resized) and the file has no "
                         "'sequence_mirrored' / 'sequence_scale' keys (written before skeletok recorded them): "
                         "rebuild the file to show its mesh")
    else:
        mirrored, size = False, 1.0
    mapping = _resolve_mapping(str(arrays["sequence_mapping"][s]) or None, motion)
    shape = int(arrays["sequence_shape"][s])
    pose = motion.frames(source, source + 1)
    if mirrored:
        pose = mirror_motion(pose)
    if "sequence_root_scale" in arrays:
        scale = float(arrays["sequence_root_scale"][s])
    else:
        first = motion.frames(0, min(CHUNK, motion.num_frames))
        scale = retarget(mirror_motion(first) if mirrored else first, body, mapping=mapping, shape=shape).scale
    posed = retarget(pose, body, mapping=mapping, shape=shape, scale=scale)
    anchor = np.array([RIG_TARGET[0], RIG_TARGET[1], 0.0])  # the builder resizes a variant about this point
    return (posed.vertices[0] + arrays["sequence_offset"][s] - anchor) * size + anchor, body.faces


def show_frame(data, frame: int, *, camera: int = 0, out, body=None, mesh: bool = True) -> Path:
    """Draw one frame: left the camera image (pixels) with the projected mesh and the 17 sparse
    joints (skeleton lines), 48 dense and 96 fine points; right the same in 3D world metres.

    Args:
        data: dataset path or loaded arrays.
        frame: frame index.
        camera: camera index for the 2D panel.
        out: output image path (``.png``, ``.pdf``, ``.svg``).
        body: body model for the mesh (committed body when ``None``).
        mesh: draw the body mesh (needs the sequence's source, see :func:`posed_mesh`).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrays = load_dataset(data) if isinstance(data, (str, Path)) else data
    n, c = len(arrays["world_sparse"]), len(arrays["cam_R"])
    if not 0 <= int(frame) < n:
        raise ValueError(f"frame must be in [0, {n}), got {frame}")
    if not 0 <= int(camera) < c:
        raise ValueError(f"camera must be in [0, {c}), got {camera}")
    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"out must end in .png, .pdf or .svg, got {str(out)!r}")
    cam = frame_camera(arrays, frame, camera)
    s = int(arrays["sequence"][frame])
    verts = posed_mesh(arrays, frame, body)[0] if mesh else None
    world = {k: arrays[f"world_{k}"][frame] for k in ("sparse", "dense", "fine")}
    pix = {k: arrays[f"pix_{k}"][frame, camera] for k in ("sparse", "dense", "fine")}
    style = {"fine": ("tab:orange", 10, "96 fine"), "dense": ("tab:green", 22, "48 dense"),
             "sparse": ("tab:blue", 30, "17 sparse")}
    fig = plt.figure(figsize=(11, 5.5))
    ax2 = fig.add_subplot(1, 2, 1)
    if verts is not None:
        vp = cam.project(verts)
        ax2.scatter(vp[:, 0], vp[:, 1], s=1.0, c="0.45", alpha=0.35, linewidths=0, label="body mesh")
    for a, b in H36M_17.parts:
        ax2.plot(pix["sparse"][[a, b], 0], pix["sparse"][[a, b], 1], c="tab:blue", lw=1.5)
    for key, (color, size, label) in style.items():
        ax2.scatter(pix[key][:, 0], pix[key][:, 1], s=size, c=color, label=label, zorder=3)
    w, h = cam.size
    ax2.set_xlim(0, w)
    ax2.set_ylim(h, 0)
    ax2.set_aspect("equal")
    ax2.set_title(f"camera {camera} (pixels)")
    ax2.legend(loc="lower right", fontsize=7)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    if verts is not None:
        sub = verts[:: max(1, len(verts) // 3000)]
        ax3.scatter(sub[:, 0], sub[:, 1], sub[:, 2], s=1.0, c="0.6", alpha=0.25, linewidths=0)
    for a, b in H36M_17.parts:
        ax3.plot(*world["sparse"][[a, b]].T, c="tab:blue", lw=1.5)
    for key, (color, size, _) in style.items():
        ax3.scatter(*world[key].T, s=size * 0.6, c=color, depthshade=False)
    known = np.concatenate([world[k] for k in ("sparse", "dense", "fine")])
    known = known[np.isfinite(known).all(-1)]  # dense/fine are NaN in files without meshes (Human3.6M)
    centre, radius = (known.max(0) + known.min(0)) / 2, np.ptp(known, axis=0).max() / 2 + 0.1
    for setter, m in zip((ax3.set_xlim, ax3.set_ylim, ax3.set_zlim), centre):
        setter(m - radius, m + radius)
    ax3.set_box_aspect((1, 1, 1))
    ax3.set_xlabel("x (m)")
    ax3.set_ylabel("y (m)")
    ax3.set_zlabel("z (m)")
    ax3.set_title("world (metres, Z-up)")
    action = str(arrays["action_names"][arrays["action"][frame]])
    fig.suptitle(f"{arrays['sequence_names'][s]} | frame {frame} | action {action}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
