"""``skeletok data ...`` commands: build datasets, convert mocap, draw a frame, rebuild the assets.

    skeletok data build [--out PATH] [--force] [--max-frames N]
    skeletok data from-mocap FILE [FILE ...] [--mapping NAME|FILE] [--asf FILE] [--up auto|y|z]
        [--unit auto|m|cm|mm|inch|cmu|METRES] [--placement auto|fixed|follow] --out data.npz
    skeletok data from-h36m data_3d_h36m.npz --cameras camera-parameters.json [--data-2d FILE] [--subjects S9 S11]
        [--stride N] [--levels body|smpl|none] [--smpl FILE.npz] [--layout-2d auto|h36m|coco] --out h36m.npz
    skeletok data show data.npz --frame N [--camera C] --out levels.png
    skeletok data build-assets [--cache DIR] [--out DIR]

Every command prints what it wrote. Bad input raises ``ValueError``/``FileNotFoundError``, which
``skeletok.cli.main`` prints as ``skeletok: error: ...`` (exit status 2). ``from-mocap`` names the file in
every error (:class:`~skeletok.errors.MotionFileError`, :class:`~skeletok.errors.JointMappingError`), checks
each file's joint mapping before building, and prints the readers' warnings (repairs, doubts about the up
axis or the unit) and the builder's (frames dropped out of view of the cameras) as ``skeletok: warning: ...``.
Its cameras follow a subject who leaves the fixed rig's images (``--placement auto``, the default;
:mod:`skeletok.data.views.placement`); ``build`` keeps the default dataset on the fixed rig.
"""

from __future__ import annotations

import sys
import time
import warnings
from importlib import resources
from pathlib import Path

__all__ = ["register"]


def _summary(path: Path) -> str:
    import numpy as np

    from skeletok.data.sets.fileformat import load_dataset

    d = load_dataset(path)
    n, c = d["pix_sparse"].shape[:2]
    test = int((d["split"] == 1).sum())
    follow = ""
    if "rig_shift" in d:
        moved = np.unique(d["sequence"][np.abs(d["rig_shift"]).max(1) > 0])
        follow = f", cameras follow the subject in {len(moved)} of {len(d['sequence_names'])} sequences"
    return (f"{n} frames x {c} cameras, {len(d['sequence_names'])} sequences, {len(d['action_names'])} actions, "
            f"{n - test} train / {test} test frames, {d['fps']:g} fps, {path.stat().st_size / 2**20:.1f} MiB{follow}")


def _build(args) -> int:
    from skeletok.data.sets.build import build_default_dataset

    start = time.perf_counter()
    path = build_default_dataset(args.out, force=args.force, max_frames_per_sequence=args.max_frames)
    print(f"wrote {path} ({_summary(path)}; {time.perf_counter() - start:.1f} s)")
    return 0


def _unit(text: str) -> str | float:
    """``--unit``: a unit name, or metres per file unit as a number."""
    from skeletok.data.motion.bvh import UNITS

    if text == "auto" or text in UNITS:
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        import argparse

        raise argparse.ArgumentTypeError(f"expected auto, one of {', '.join(UNITS)} or metres per unit, got {text!r}")
    return value


def _read_mocap(path: Path, args, mapping):
    """One file as a Motion whose joints ``mapping`` (or the detected preset) covers; errors name the file."""
    from skeletok.data.motion.mapping import detect_mapping
    from skeletok.data.motion.read import read_motion
    from skeletok.errors import file_errors

    kwargs = {"up": args.up, "unit": args.unit, "mapping": mapping}
    if args.asf and path.suffix.lower() == ".amc":
        kwargs["asf"] = args.asf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with file_errors(path, what="motion file"):
                motion = read_motion(path, **kwargs)
            if mapping is None:
                detect_mapping(motion.joint_names, where=str(path))
            else:
                mapping.check(motion.joint_names, where=str(path))
        finally:
            for w in caught:
                if not issubclass(w.category, DeprecationWarning):
                    print(f"skeletok: warning: {w.message}", file=sys.stderr)
    return motion


def _from_mocap(args) -> int:
    from skeletok.data.sets.build import build_dataset
    from skeletok.data.motion.mapping import get_mapping

    mapping = get_mapping(args.mapping) if args.mapping is not None else None
    motions, sources = [], []
    for file in args.files:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"motion file {str(path)!r} does not exist")
        kwargs = {"asf": args.asf} if args.asf and path.suffix.lower() == ".amc" else {}
        motion = _read_mocap(path, args, mapping)
        if args.action:
            motion.action = args.action
        motions.append(motion)
        sources.append(str(path.resolve()) + (f"?asf={Path(args.asf).resolve()}" if kwargs else ""))
    names = [m.name for m in motions]
    for i, m in enumerate(motions):
        if names.count(m.name) > 1:
            m.name = f"{m.name}#{i}"
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            path = build_dataset(
                motions, out=args.out, mapping=args.mapping, cameras=args.cameras, fps=args.fps,
                test_fraction=args.test_fraction if len(motions) > 1 else 0.0, max_frames=args.max_frames,
                sources=sources, seed=args.seed, placement=args.placement, follow_window_s=args.follow_window,
            )
        finally:
            for w in caught:
                if not issubclass(w.category, DeprecationWarning):
                    print(f"skeletok: warning: {w.message}", file=sys.stderr)
    print(f"wrote {path} ({_summary(path)}; {time.perf_counter() - start:.1f} s)")
    if len(motions) == 1:
        print("note: one motion file gives one sequence, so every frame is in the train split")
    return 0


def _from_h36m(args) -> int:
    from skeletok.data.sets.h36m import h36m_to_dataset
    from skeletok.data.sets.h36m_smpl import SMPL_FILE_HELP
    from skeletok.data.views.h36m_calibration import CALIBRATION_HELP

    if args.cameras is None:
        raise ValueError(f"from-h36m needs --cameras FILE. {CALIBRATION_HELP}")
    levels = args.levels or ("smpl" if args.smpl else "body")
    if levels == "smpl" and args.smpl is None:
        raise ValueError(f"--levels smpl needs --smpl FILE.npz: {SMPL_FILE_HELP}")
    if args.smpl is not None and levels != "smpl":
        raise ValueError(f"--smpl gives the dense/fine levels from SMPL meshes; it cannot go with --levels {levels}")
    start = time.perf_counter()
    report: dict = {}
    path = h36m_to_dataset(args.data_3d, cameras=args.cameras, data_2d=args.data_2d, out=args.out,
                           subjects=args.subjects, stride=args.stride, levels_from=levels, layout_2d=args.layout_2d,
                           smpl_vertices=args.smpl, report=report)
    print(f"wrote {path} ({_summary(path)}; {time.perf_counter() - start:.1f} s)")
    for note in report.get("notes_2d", []):
        print(f"note: {args.data_2d}: {note}")
    for line in report.get("trimmed_2d", []):
        print(f"note: {line} (detections longer than the 3D are cut to its length, as VideoPose3D does)")
    if report.get("levels_from") == "body":
        print("dense/fine levels: skeletok's body retargeted onto the 3D joints; fit (distance between the body's "
              "17 joints and the file's):")
        for subject, fit in {**report["fit"], "all": report["fit_all"]}.items():
            size = f"body shape {fit['shape']}, size x{fit['scale']:.3f}, " if "shape" in fit else ""
            print(f"  {subject:4s} {size}{fit['frames']} frames: mean {fit['mean_mm']:.1f} mm, "
                  f"95th percentile {fit['p95_mm']:.1f} mm, max {fit['max_mm']:.1f} mm")
    elif report.get("levels_from") == "smpl":
        smpl = report["smpl"]
        print(f"dense/fine levels: the SMPL meshes of {smpl['source']} ({smpl['vertices']} vertices, "
              f"{smpl['faces']} faces) coarsened into 48/96 points")
    else:
        print("dense/fine levels: none (NaN); only the sparse-only lifter trains on this file")
    return 0


def _show(args) -> int:
    from skeletok.data.sets.show import show_frame

    path = show_frame(args.data, args.frame, camera=args.camera, out=args.out, mesh=not args.no_mesh)
    print(f"wrote {path}")
    return 0


def _build_assets(args) -> int:
    from skeletok.data.body.assets import build_body_assets
    from skeletok.data.motion.assets import build_motion_assets
    from skeletok.data.sets.paths import cache_dir

    out = Path(args.out) if args.out else Path(str(resources.files("skeletok.data") / "assets"))
    cache = Path(args.cache).expanduser() if args.cache else cache_dir() / "motion_sources"
    try:
        motion = build_motion_assets(out, cache)
        body = build_body_assets(out / "body.npz")
    except ImportError as err:  # the body builder needs optional packages; say which
        raise ValueError(f"build-assets needs extra packages: {err}") from None
    for stem, info in motion.items():
        print(f"wrote {out / f'motion_{stem}.npz'} ({info['sequences']} sequences, {info['frames']} frames, "
              f"{info['bytes']} bytes)")
    print(f"wrote {body}")
    return 0


def register(groups) -> None:
    """Add the ``data`` command group to the top-level ``skeletok`` parser's sub-parsers."""
    parser = groups.add_parser("data", help="build and inspect datasets")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build (or find cached) the default dataset from the committed assets")
    build.add_argument("--out", type=Path, default=None, help="output .npz (default: $SKELETOK_DATA or "
                       "~/.cache/skeletok/default-v3.npz)")
    build.add_argument("--force", action="store_true", help="rebuild even if a valid file exists")
    build.add_argument("--max-frames", type=int, default=None, help="at most N frames per sequence (tiny builds)")
    build.set_defaults(func=_build)

    mocap = commands.add_parser("from-mocap", help="build a dataset from your own motion capture files")
    mocap.add_argument("files", nargs="+", help=".bvh, .amc, .npy/.npz or DeepMimic .txt files (one sequence each)")
    mocap.add_argument("--mapping", default=None, help="joint mapping preset or .json (default: detected)")
    mocap.add_argument("--asf", default=None, help="ASF skeleton for .amc files (default: the .asf beside)")
    mocap.add_argument("--up", choices=("auto", "y", "z"), default="auto",
                       help="the files' up axis (default auto: detected from the body, refused when unclear)")
    mocap.add_argument("--unit", type=_unit, default="auto", metavar="auto|m|cm|mm|inch|cmu|METRES",
                       help="the files' length unit, or metres per unit (default auto: from the body's size)")
    mocap.add_argument("--out", type=Path, required=True, help="output .npz")
    mocap.add_argument("--cameras", default="h36m", help="'h36m', 'random' or 'random:N' (default h36m)")
    mocap.add_argument("--placement", choices=("auto", "fixed", "follow"), default="auto",
                       help="camera placement: 'fixed' rig, cameras that 'follow' the subject over the ground, or "
                       "'auto' (default): fixed when the subject stays inside every image, else follow")
    mocap.add_argument("--follow-window", type=float, default=1.0, metavar="SECONDS",
                       help="smoothing of the followed path in seconds (default 1; 0 follows the root exactly)")
    mocap.add_argument("--fps", type=float, default=25.0, help="frame rate of the dataset (default 25)")
    mocap.add_argument("--test-fraction", type=float, default=0.2, help="fraction of frames (whole files) for test")
    mocap.add_argument("--max-frames", type=int, default=None, help="at most N frames per file")
    mocap.add_argument("--action", default=None, help="action label for every file (default: from the file name)")
    mocap.add_argument("--seed", type=int, default=0)
    mocap.set_defaults(func=_from_mocap)

    h36m = commands.add_parser("from-h36m", help="convert Human3.6M (VideoPose3D .npz files) to a dataset file")
    h36m.add_argument("data_3d", help="data_3d_h36m.npz")
    h36m.add_argument("--cameras", default=None, metavar="FILE",
                      help="required: the camera calibration JSON of your Human3.6M copy (camera-parameters.json "
                      "from the download tools, or VideoPose3D's parameters as JSON); skeletok ships none")
    h36m.add_argument("--data-2d", default=None, help="2D detections, e.g. data_2d_h36m_cpn_ft_h36m_dbb.npz")
    h36m.add_argument("--layout-2d", choices=("auto", "h36m", "coco"), default="auto",
                      help="keypoint order of --data-2d (default auto: the file's VideoPose3D metadata; give it for "
                      "files without metadata); COCO order is converted to Human3.6M-17")
    h36m.add_argument("--subjects", nargs="+", default=None, help="subjects to convert (default: all)")
    h36m.add_argument("--stride", type=int, default=1, help="keep every N-th frame (default 1)")
    h36m.add_argument("--levels", choices=("body", "smpl", "none"), default=None,
                      help="dense/fine levels: 'body' (default without --smpl: skeletok's CC0 body retargeted onto "
                      "the joints, the fit is printed), 'smpl' (the meshes of --smpl; implied by --smpl) or 'none' "
                      "(NaN)")
    h36m.add_argument("--smpl", default=None, metavar="FILE.npz",
                      help="SMPL vertices of the 3D file's sequences: one .npz with 'faces' (f, 3) int and one "
                      "(t, v, 3) array per sequence named '<subject>/<action>' (e.g. 'S1/Walking 1'), in the 3D "
                      "file's world frame, metres, and frame count (see docs/h36m.md)")
    h36m.add_argument("--out", type=Path, required=True, help="output .npz")
    h36m.set_defaults(func=_from_h36m)

    show = commands.add_parser("show", help="draw one frame's mesh and 17/48/96 points in 2D and 3D")
    show.add_argument("data", type=Path, help="dataset .npz")
    show.add_argument("--frame", type=int, required=True)
    show.add_argument("--camera", type=int, default=0)
    show.add_argument("--out", type=Path, required=True, help="picture (.png, .pdf or .svg)")
    show.add_argument("--no-mesh", action="store_true", help="skip the body mesh (no source needed)")
    show.set_defaults(func=_show)

    assets = commands.add_parser("build-assets", help="rebuild the committed motion and body assets (downloads)")
    assets.add_argument("--cache", default=None,
                        help="download cache folder (default ~/.cache/skeletok/motion_sources)")
    assets.add_argument("--out", default=None, help="asset folder (default: the package's skeletok/data/assets)")
    assets.set_defaults(func=_build_assets)
