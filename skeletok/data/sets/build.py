"""The dataset builder: motions -> body -> sparse/dense/fine levels -> cameras -> the ``.npz`` file.

For each motion: resample to one frame rate, retarget onto a body shape (shapes vary across
sequences so dense points are not a fixed function of the joints), compute the 17/48/96-point
levels, then shift the sequence horizontally so its mean root lands above the rig's target
(``RIG_TARGET``, x = y = 0) and vertically so its lowest mesh vertex touches the ground
(``ground=True``), project through every camera, and label actions. The train/test split is
**by sequence**.

Cameras. One rig serves every sequence: the cameras look at the sequence's mean root
horizontally and at a standing pelvis height (0.9 m) vertically. Heights above the ground are
kept (only the small ground alignment moves a sequence vertically), so climbing (roots 0.9-1.9 m) rises in the
image and crawling (0.2-0.4 m) sits low, as they would in a real capture room; both stay in view. The horizontal
shift of each sequence is kept in ``sequence_offset`` with the vertical ground shift (subtract it to recover the
retargeted world positions).

Placement (:mod:`skeletok.data.views.placement`). A take that leaves a capture volume of a few metres (a long walk)
leaves a fixed rig's images, and passes behind its cameras. ``placement="follow"`` translates the rig over the
ground with the subject's smoothed root (same relative geometry), recorded per frame as ``rig_shift``;
``"auto"`` (the default of :func:`build_dataset`, and of ``skeletok data from-mocap``) keeps the fixed rig for a
sequence whose points all stay inside every image and follows otherwise; ``"fixed"`` never follows (the default
dataset, :func:`build_default_dataset`). Whatever the placement, frames with a point behind a camera or far
outside an image (:func:`~skeletok.data.views.placement.in_view`) are dropped with a warning that counts them,
and a take with no frame left is refused.

The default dataset (:func:`build_default_dataset`) is built from the committed motion and body
assets and cached at :func:`skeletok.data.sets.paths.default_dataset_path`; its test sequences are
:data:`DEFAULT_TEST_SEQUENCES`.

Shapes: ``n`` frames, ``c`` cameras, ``j`` points of a level, ``s`` sequences.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from skeletok.data.sets.actions import action_from_name, assign_actions
from skeletok.data.sets.assemble import assemble_dataset
from skeletok.data.views.cameras import Camera, h36m_like_rig, random_cameras
from skeletok.data.views.placement import place_sequence
from skeletok.data.sets.fileformat import load_dataset, save_dataset
from skeletok.data.sets.paths import default_dataset_path
from skeletok.data.sets.splits import frames_per_split, near_duplicate_groups, split_by_sequence, split_takes
from skeletok.data.motion.variants import evenly_spaced, evenly_spaced_index, mirror_motion

ASSET_SOURCE = "skeletok:motion_assets"  # sequence_source of sequences built from the committed assets

__all__ = [
    "RIG_TARGET",
    "DEFAULT_FPS",
    "DEFAULT_TEST_SEQUENCES",
    "DEFAULT_VAL_SEQUENCES",
    "make_cameras",
    "split_by_sequence",
    "build_dataset",
    "build_default_dataset",
]

RIG_TARGET = (0.0, 0.0, 0.9)  # every camera looks here; sequences are shifted horizontally onto x = y = 0
DEFAULT_FPS = 25.0
DEFAULT_ASSET_FPS = 50.0  # the default dataset's rate (Human3.6M's); its motions total 165 s
# Test takes of the default dataset: an unseen take of a training action (climbing) and three actions that
# occur nowhere in training or validation (a dance, a spin kick, a get-up from lying on the back).
DEFAULT_TEST_SEQUENCES: tuple[str, ...] = (
    "holosoma/mocap_climb_seq_4",
    "deepmimic/dance_b",
    "deepmimic/spinkick",
    "deepmimic/getup_faceup",
)
# Validation takes: a held-out take of a training action (climbing) and two held-out actions (a cartwheel and a
# punch), so settings are chosen on both kinds of generalisation without reading the test split.
DEFAULT_VAL_SEQUENCES: tuple[str, ...] = (
    "holosoma/mocap_climb_seq_3",
    "deepmimic/cartwheel",
    "deepmimic/punch",
)


def make_cameras(cameras, *, seed: int = 0) -> list[Camera]:
    """Resolve a camera choice: ``"h36m"`` (the 4-camera Human3.6M-like rig), ``"random"``
    (4 random viewpoints, :func:`~skeletok.data.views.cameras.random_cameras` with ``seed``),
    ``"random:N"`` (N of them) or a list of :class:`~skeletok.data.views.cameras.Camera`. All look at
    :data:`RIG_TARGET`."""
    if isinstance(cameras, str):
        if cameras == "h36m":
            return h36m_like_rig(RIG_TARGET)
        if cameras == "random" or cameras.startswith("random:"):
            n = int(cameras.split(":")[1]) if ":" in cameras else 4
            return random_cameras(np.random.default_rng(seed), n, RIG_TARGET)
        raise ValueError(f"cameras must be 'h36m', 'random', 'random:N' or a list of Camera, got {cameras!r}")
    cameras = list(cameras)
    if not cameras or not all(isinstance(c, Camera) for c in cameras):
        raise ValueError(f"cameras must be a non-empty list of Camera, got {cameras!r}")
    return cameras


CHUNK = 2048  # frames retargeted and skinned at once (vertices: about 160 MB); default sequences fit in one


def _resolve_mapping(mapping, motion):
    """The mapping given, else the one the motion carries, else the preset covering most of its joints."""
    from skeletok.data.motion.mapping import detect_mapping, get_mapping

    mapping = mapping if mapping is not None else getattr(motion, "mapping", None)
    if mapping is None:
        mapping = detect_mapping(motion.joint_names)
    return get_mapping(mapping)


def _pose_levels(motion, body, levels, mapping, shape: int):
    """Retarget in chunks of :data:`CHUNK` frames (one root scale for the whole motion) -> 3 levels, the
    ``(t,)`` height of the lowest mesh vertex per frame (kept for grounding, :func:`_ground_lift`) and the root
    scale (``sequence_root_scale``)."""
    from skeletok.data.motion.retarget import retarget

    out, lowest, scale = [], [], "auto"
    for start in range(0, motion.num_frames, CHUNK):
        part = motion.frames(start, min(start + CHUNK, motion.num_frames)) if motion.num_frames > CHUNK else motion
        posed = retarget(part, body, mapping=mapping, shape=shape, scale=scale)
        scale = posed.scale
        out.append(levels.levels(posed.joints, posed.vertices))
        lowest.append(posed.vertices[..., 2].min(axis=1))
    return [np.concatenate(level) for level in zip(*out)], np.concatenate(lowest), float(scale)


def _ground_lift(lowest_vertex: np.ndarray) -> float:
    """Vertical shift that puts the lowest mesh vertex of a sequence (over all frames) on z = 0.

    Grounding on the lowest level point instead (cluster means and joints, which sit above the surface) left the
    mesh 1-8 cm below the floor."""
    return -float(np.min(lowest_vertex))


def _variant_plan(split: int, shapes_per_take: int, mirror: bool) -> list[tuple[int, bool]]:
    """(shape slot, mirrored) of every variant of a take: the base take alone outside training."""
    if split != 0:
        return [(0, False)]
    return [(slot, flip) for slot in range(shapes_per_take) for flip in ((False, True) if mirror else (False,))]


def _place(levels_3: list[np.ndarray], lowest_vertex: np.ndarray, target: np.ndarray, ground: bool, scale: float):
    """Shift a variant so its mean root sits above ``target`` and its lowest mesh vertex on z = 0, then scale it
    about that ground point; returns the levels and the translation (the scale is applied after it)."""
    sparse = levels_3[0]
    lift = _ground_lift(lowest_vertex) if ground else 0.0
    offset = np.append(target[:2] - sparse[:, 0, :2].mean(0), lift)
    anchor = np.append(target[:2], 0.0)
    return [((arr + offset - anchor) * scale + anchor).astype(np.float32) for arr in levels_3], offset


def build_dataset(motions: Sequence, *, body=None, levels=None, out, cameras="h36m", shapes=None,
                  fps: float = DEFAULT_FPS, mapping=None, test_fraction: float = 0.2, test_sequences=None,
                  val_fraction: float = 0.0, val_sequences=None, near_duplicate_m: float | None = 0.06,
                  mirror: bool = False, shapes_per_take: int = 1, scale_range: tuple[float, float] = (1.0, 1.0),
                  max_frames: int | None = None, num_pseudo_actions: int = 8, seed: int = 0,
                  sources=None, actions_from_names: bool = True, ground: bool = True, placement: str = "auto",
                  follow_window_s: float = 1.0, progress: bool = True) -> Path:
    """Build a dataset file from motions (one motion = one *take*).

    Splits are by take (`skeletok.data.sets.splits`): near-duplicate takes form a group and a group goes to one
    split. Training takes can be multiplied into *variants*, each its own sequence of the file: the take on
    ``shapes_per_take`` body shapes, each also left/right mirrored (``mirror``, mirrored before retargeting,
    `skeletok.data.motion.variants.mirror_motion`), each variant but the first scaled in size by a factor drawn from
    ``scale_range`` (all bone lengths alike, about the ground point under the mean root). Validation and test
    takes keep one variant: the take as recorded, on one shape, unscaled.

    Args:
        motions: :class:`~skeletok.data.motion.core.Motion` objects (names must be unique).
        body: the :class:`~skeletok.data.body.model.BodyModel`; the committed body when ``None``.
        levels: the :class:`~skeletok.data.body.levels.BodyLevels` of ``body``; built when ``None``.
        out: output ``.npz`` path.
        cameras: see :func:`make_cameras`.
        shapes: body shape ids cycled over the takes and their variants; all of the body's shapes when ``None``.
        fps: every motion is resampled to this frame rate.
        mapping: joint mapping (preset name, path or ``JointMapping``) for every motion; ``None``
            uses the one a motion carries (a ``mapping`` attribute), else the preset covering most
            of its joint names (:func:`~skeletok.data.motion.mapping.detect_mapping`).
        test_fraction: fraction of frames (whole groups of takes) drawn for test when ``test_sequences`` is
            ``None``.
        test_sequences: names of the test takes (their near-duplicate groups come along).
        val_fraction: fraction of frames drawn for validation when ``val_sequences`` is ``None``.
        val_sequences: names of the validation takes.
        near_duplicate_m: near-duplicate distance of takes in metres
            (`skeletok.data.sets.splits.near_duplicate_groups`); ``None`` makes every take its own group.
        mirror: add the mirrored motion of every training take (variant).
        shapes_per_take: body shapes per training take (each a variant).
        scale_range: ``(low, high)`` uniform size factor of the training variants after the first.
        max_frames: keep at most this many frames per take, evenly spaced over the whole take.
        num_pseudo_actions: k of the pose k-means for unlabelled data.
        seed: seeds the split, random cameras, variant scales and pseudo-labels.
        sources: per motion, where it came from (a file path or ``"skeletok:motion_assets"``),
            stored as ``sequence_source`` so pictures can rebuild the mesh; ``""`` when unknown.
        actions_from_names: label a motion without ``action`` by its name
            (:func:`~skeletok.data.sets.actions.action_from_name`, e.g. ``walk_02.bvh`` -> ``walk``);
            ``False`` leaves it unlabelled (pose-cluster pseudo-labels).
        ground: shift each sequence vertically so that its lowest mesh vertex (over all frames)
            touches z = 0; this removes the few centimetres of foot penetration or floating left by
            retargeting a source skeleton onto a body of other proportions (the shift goes into
            ``sequence_offset``). Turn off for motions that never touch the ground.
        placement: ``"auto"`` (the fixed rig for a sequence that stays inside every image, else follow the
            subject), ``"fixed"`` or ``"follow"``; see the module docstring. Frames out of view are dropped with a
            :class:`~skeletok.errors.MotionWarning` whatever the placement.
        follow_window_s: smoothing of the followed root path in seconds
            (:func:`~skeletok.data.views.placement.follow_shift`).
        progress: show a tqdm bar.

    Returns:
        The path written. Per sequence the file also records ``sequence_take`` (the take's name),
        ``sequence_group`` (its near-duplicate group), ``sequence_mirrored``, ``sequence_scale`` (the variant's size
        factor) and ``sequence_root_scale`` (the retargeting's root scale); per frame ``source_frame`` (the frame of
        the take, resampled to ``fps``, that the row is: not the row's place in its sequence when ``max_frames``
        capped the take or frames out of view were dropped); ``rig_shift`` when a sequence follows the subject.

    Raises:
        ValueError: for bad arguments, or naming the take (and its source) when none of its frames is in view.
    """
    motions = list(motions)
    if not motions:
        raise ValueError("motions must hold at least one Motion, got none")
    names = [m.name for m in motions]
    if len(set(names)) != len(names):
        raise ValueError(f"motion names must be unique (they name the sequences), got {names}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if shapes_per_take < 1:
        raise ValueError(f"shapes_per_take must be >= 1, got {shapes_per_take}")
    low, high = (float(v) for v in scale_range)
    if not 0 < low <= high:
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
    if body is None:
        from skeletok.data.body.model import BodyModel

        body = BodyModel.load()
    if levels is None:
        from skeletok.data.body.levels import build_levels

        levels = build_levels(body.vertices[0], body.faces, body.skin_index, body.skin_weight, body.joint_names,
                              body.parents, body.rest_joints[0])
    shapes = list(range(body.num_shapes)) if shapes is None else [int(s) for s in shapes]
    cams = make_cameras(cameras, seed=seed)
    target = np.asarray(RIG_TARGET)
    sources = [""] * len(motions) if sources is None else [str(src) for src in sources]
    if len(sources) != len(motions):
        raise ValueError(f"sources must have one entry per motion ({len(motions)}), got {len(sources)}")
    takes, base_levels = [], []
    for i, motion in enumerate(tqdm(motions, desc="retarget", disable=not progress)):
        if abs(float(motion.fps) - fps) > 1e-6:
            motion = motion.resample(fps)
        frame_index = evenly_spaced_index(motion.num_frames, max_frames)  # source frame of each kept frame
        motion = evenly_spaced(motion, max_frames)
        chosen = _resolve_mapping(mapping, motion)
        given = mapping if mapping is not None else getattr(motion, "mapping", None)
        label = getattr(motion, "action", None)
        if not label and actions_from_names:
            try:
                label = action_from_name(motion.name)
            except ValueError:
                label = None
        takes.append(dict(motion=motion, mapping=chosen, label=label, source=sources[i], frame_index=frame_index,
                          mapping_name=str(given) if isinstance(given, (str, Path)) else chosen.name))
        base_levels.append(_pose_levels(motion, body, levels, chosen, shapes[i % len(shapes)]))
    base_levels, base_lowest, base_root = ([r[k] for r in base_levels] for k in range(3))
    frames = [len(lv[0]) for lv in base_levels]
    groups = (np.arange(len(takes)) if near_duplicate_m is None or len(takes) < 2
              else near_duplicate_groups([lv[0] for lv in base_levels], threshold_m=near_duplicate_m))
    take_split = split_takes(names, frames, groups=groups, val=val_sequences, test=test_sequences,
                             val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng((seed, 7))
    parts: dict[str, list[np.ndarray]] = {"sparse": [], "dense": [], "fine": []}
    seq_names, sequence, offsets, labels, shifts, followed, extra = [], [], [], [], [], [], {
        k: [] for k in ("source", "mapping", "shape", "take", "group", "mirrored", "scale", "root_scale")}
    source_frame = []
    for i, take in enumerate(tqdm(takes, desc="variants", disable=not progress)):
        for u, (slot, flip) in enumerate(_variant_plan(int(take_split[i]), shapes_per_take, mirror)):
            shape = shapes[(i + u) % len(shapes)]
            if u == 0:
                lv, lowest, root_scale = base_levels[i], base_lowest[i], base_root[i]
            else:
                motion = mirror_motion(take["motion"]) if flip else take["motion"]
                lv, lowest, root_scale = _pose_levels(motion, body, levels, take["mapping"], shape)
            scale = 1.0 if u == 0 else float(rng.uniform(low, high))
            placed, offset = _place(lv, lowest, target, ground, scale)
            name = names[i] + ("" if u == 0 else f"~{'mirror~' if flip else ''}shape{shape}")
            placed, shift, keep = place_sequence(placed, cams, placement, fps, follow_window_s, target, name,
                                                 take["source"])
            source_frame.append(take["frame_index"][keep])
            followed.append(shift is not None)
            shifts.append(np.zeros((len(placed[0]), 3)) if shift is None else shift)
            for key, arr in zip(("sparse", "dense", "fine"), placed):
                parts[key].append(arr)
            sequence.append(np.full(len(placed[0]), len(seq_names), dtype=np.int64))
            seq_names.append(name)
            offsets.append(offset)
            labels.append(take["label"])
            for key, value in (("source", take["source"]), ("mapping", take["mapping_name"]), ("shape", shape),
                               ("take", names[i]), ("group", int(groups[i])), ("mirrored", int(flip)),
                               ("scale", scale), ("root_scale", root_scale)):
                extra[key].append(value)
    sequence = np.concatenate(sequence)
    world = {k: np.concatenate(v) for k, v in parts.items()}
    action, action_names = assign_actions(labels, sequence, world["sparse"], k=num_pseudo_actions, seed=seed)
    split = take_split[[names.index(t) for t in extra["take"]]]
    arrays = assemble_dataset(
        world_sparse=world["sparse"], world_dense=world["dense"], world_fine=world["fine"], sequence=sequence,
        sequence_names=seq_names, parts_dense=levels.parts_dense, parts_fine=levels.parts_fine,
        fine_to_dense=levels.fine_to_dense, action=action, action_names=action_names, split=split, fps=fps,
        cameras=cams, sequence_offset=np.stack(offsets),
        rig_shift=np.concatenate(shifts) if any(followed) else None,
        extra={"sequence_source": np.asarray(extra["source"], dtype=str),
               "sequence_mapping": np.asarray(extra["mapping"], dtype=str),
               "sequence_shape": np.asarray(extra["shape"], dtype=np.int64),
               "sequence_take": np.asarray(extra["take"], dtype=str),
               "sequence_group": np.asarray(extra["group"], dtype=np.int64),
               "sequence_mirrored": np.asarray(extra["mirrored"], dtype=np.int64),
               "sequence_scale": np.asarray(extra["scale"], dtype=np.float64),
               "sequence_root_scale": np.asarray(extra["root_scale"], dtype=np.float64),
               "source_frame": np.concatenate(source_frame).astype(np.int64)},
    )
    return save_dataset(arrays, out)


def build_default_dataset(out=None, *, force: bool = False, max_frames_per_sequence: int | None = None,
                          mirror: bool = True, shapes_per_take: int = 2, progress: bool = True) -> Path:
    """Build (or find in the cache) the default dataset from the committed assets.

    27 takes (5 holosoma climbing takes, 20 DeepMimic clips, 2 bvhtoolbox BVHs), 165 s of motion resampled to
    50 fps (8,257 frames), 4 Human3.6M-like cameras. Training takes come as variants: ``shapes_per_take`` body
    shapes, each also mirrored (``mirror``), sizes varied by +-8 %. Actions: the sources' labels (``climb``,
    the DeepMimic clip names); the two bvhtoolbox takes carry none and get pose-cluster pseudo-labels. Test
    takes: :data:`DEFAULT_TEST_SEQUENCES`; validation takes: :data:`DEFAULT_VAL_SEQUENCES` (each with its
    near-duplicate group).

    Args:
        out: output path; :func:`~skeletok.data.sets.paths.default_dataset_path` when ``None``.
        force: rebuild even if a valid file exists.
        max_frames_per_sequence: at most this many frames per take, evenly spaced (a smaller variant with its
            own cache file, for tests and the demo).
        mirror: mirrored variants of the training takes.
        shapes_per_take: body shapes per training take.
        progress: show progress bars.

    Returns:
        The path of the (valid) dataset file.
    """
    variant = f"{'m' if mirror else ''}s{int(shapes_per_take)}"
    path = Path(out) if out is not None else default_dataset_path(max_frames_per_sequence, variant)
    if path.exists() and not force:
        try:
            load_dataset(path)
            return path
        except ValueError:
            pass  # stale or broken cache: rebuild it
    from skeletok.data.motion.assets import load_motion_assets

    motions = load_motion_assets()
    names = {m.name for m in motions}
    test = [n for n in DEFAULT_TEST_SEQUENCES if n in names] or None
    val = [n for n in DEFAULT_VAL_SEQUENCES if n in names] or None
    start = time.perf_counter()
    written = build_dataset(motions, out=path, fps=DEFAULT_ASSET_FPS, test_sequences=test, val_sequences=val,
                            max_frames=max_frames_per_sequence, mirror=mirror, shapes_per_take=shapes_per_take,
                            scale_range=(0.92, 1.08), sources=[ASSET_SOURCE] * len(motions),
                            actions_from_names=False, placement="fixed", progress=progress)
    if progress:
        print(f"built {written} in {time.perf_counter() - start:.1f} s")
        counts = frames_per_split(load_dataset(written))
        for src, row in counts.items():
            print(f"  {src:12s} " + "  ".join(f"{k} {v:6d}" for k, v in row.items()))
    return written
