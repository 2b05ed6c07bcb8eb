"""``skeletok hipart infer``: 3D poses from a file of 2D keypoints with a trained HiPART run.

Launch::

    skeletok hipart infer --run runs/demo --keypoints dets.json --out result.npz [--plot out.png]
        [--image-size W H] [--layout coco17|h36m17] [--score-threshold 0.3]
        [--temperature 0] [--hypotheses 1] [--lazy]

``--keypoints`` is COCO-17 or H36M-17 keypoints with scores: COCO results / annotations JSON, OpenPose or
mmpose JSON, or npz (`recipes.hipart.keypoints`). Keypoints scoring below the threshold are treated as
occluded (invisible), which is where HiPART's densification helps most.

The 2D input is normalised by the image width (the Human3.6M convention the networks were trained with), so
the image size must be known: from the file (COCO annotations, npz ``image_size``) or ``--image-size``.

Output ``.npz``:

| key | shape | meaning |
|---|---|---|
| ``joints_3d`` | ``(n, [h,] 17, 3)`` | Human3.6M-17 joints, camera frame (x right, y down, z forward), root-relative (pelvis at 0), metres |
| ``sparse_2d``, ``dense_2d``, ``fine_2d`` | ``(n, [h,] 17/48/96, 2)`` | input and generated 2D levels, pixels |
| ``visible``, ``scores`` | ``(n, 17)`` | which keypoints were used, detector scores |
| ``q_s``, ``q_d`` | ``(n, [h,] p)``, ``(n, [h,] p, r)`` | generated tokens (-1 for fully seen poses with ``--lazy``) |
| ``joint_names`` | ``(17,)`` | Human3.6M-17 joint names |
| ``image_size`` | ``(2,)`` | width, height in pixels |

``h`` (hypotheses) is present only with ``--hypotheses`` > 1 (which needs ``--temperature`` > 0). ``--lazy``
generates tokens only for the poses whose answer reads them (`recipes.hipart.inference.HiPART`, ``lazy``): the same
joints and levels, faster when many poses are fully seen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .launch import add_command, command_main
from .inference import HiPART
from .keypoints import read_keypoints
from skeletok.data.views.cameras import unnormalize_screen
from skeletok.skeleton import H36M_17

__all__ = ["run_infer", "add_parser", "main"]


def run_infer(run: str | Path, keypoints: str | Path, out: str | Path, *, plot: str | Path | None = None,
              image_size: tuple[float, float] | None = None, layout: str | None = None,
              score_threshold: float = 0.3, temperature: float = 0.0, hypotheses: int = 1,
              device: str = "auto", seed: int = 0, lazy: bool = False) -> Path:
    """Run HiPART on a keypoint file and write ``out`` (see the module docstring for its keys).

    Raises:
        FileNotFoundError: the run's model files or the keypoint file are missing.
        ValueError: an unreadable keypoint file, an unknown image size, or bad sampling settings.
    """
    kp = read_keypoints(keypoints, layout=layout, score_threshold=score_threshold, image_size=image_size)
    if kp.image_size is None:
        raise ValueError(f"{keypoints}: the image size is unknown (the file does not say); pass --image-size W H")
    w, h = kp.image_size
    model = HiPART.load(run, device=device, lazy=lazy)
    generator = torch.Generator(device=model.device).manual_seed(seed) if temperature > 0 else None
    pred = model.predict_pixels(torch.from_numpy(kp.points), torch.from_numpy(kp.visible), image_size=(w, h),
                                temperature=temperature, num_hypotheses=hypotheses, generator=generator)
    px = lambda x: unnormalize_screen(x.numpy(), w, h).astype(np.float32)  # noqa: E731
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, joints_3d=pred.joints_3d.numpy(), sparse_2d=kp.points, dense_2d=px(pred.dense_2d),
             fine_2d=px(pred.fine_2d), visible=kp.visible, scores=kp.scores, q_s=pred.q_s.numpy(),
             q_d=pred.q_d.numpy(), joint_names=np.array(H36M_17.joint_names), image_size=np.array([w, h]))
    if plot:
        _plot(kp, pred, px, Path(plot))
    return out


def _plot(kp, pred, px, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = (lambda x: x[0, 0]) if pred.joints_3d.ndim == 4 else (lambda x: x[0])  # noqa: E731
    sparse, vis = kp.points[0], kp.visible[0]
    dense, fine = first(px(pred.dense_2d)), first(px(pred.fine_2d))
    joints = first(pred.joints_3d.numpy())
    fig = plt.figure(figsize=(10, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    for child, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            ax.plot(*sparse[[parent, child]].T, color="0.6")
    ax.scatter(*sparse[vis].T, c="k", s=20, label="keypoints (used)")
    ax.scatter(*sparse[~vis].T, facecolors="none", edgecolors="r", s=30, label="keypoints (low score)")
    ax.scatter(*dense.T, c="tab:green", marker="x", s=14, label="dense (generated)")
    ax.scatter(*fine.T, c="tab:blue", s=5, alpha=0.5, label="fine (generated)")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    ax.set_title("2D, pixels")
    ax = fig.add_subplot(1, 2, 2, projection="3d")
    view = np.stack([joints[:, 0], joints[:, 2], -joints[:, 1]], axis=1)
    for child, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            ax.plot(*view[[parent, child]].T, color="tab:red")
    ax.set_title("3D, metres (camera frame, root-relative)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default="runs/demo", help="run directory (default: runs/demo)")
    parser.add_argument("--keypoints", required=True, help="keypoint file (.json or .npz)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--plot", default=None, help="also draw the first pose into this PNG")
    parser.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"), default=None)
    parser.add_argument("--layout", choices=("coco17", "h36m17"), default=None)
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--hypotheses", type=int, default=1)
    parser.add_argument("--lazy", action="store_true", help="tokens only for poses whose answer reads them")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)


def _run(args: argparse.Namespace) -> int:
    out = run_infer(args.run, args.keypoints, args.out, plot=args.plot,
                    image_size=tuple(args.image_size) if args.image_size else None, layout=args.layout,
                    score_threshold=args.score_threshold, temperature=args.temperature,
                    hypotheses=args.hypotheses, device=args.device, seed=args.seed, lazy=args.lazy)
    print(f"wrote {out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart infer``."""
    add_command(subparsers, "infer", help="3D poses from a 2D keypoint file",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
