"""``skeletok hipart diagnose``: where HiPART's generated levels lose what the true levels carry.

Launch::

    skeletok hipart diagnose --run runs/demo --split val
    python -m recipes.hipart.diagnose --run runs/demo --split val --max-samples 500

On the clean (unoccluded) samples of a split it builds the dense and fine levels five ways and reports, for each,
their 2D error (pixels, mean over points) and the MPJPE (mm) of the run's HiPART and oracle lifters fed with them:

- ``true``: the ground-truth levels (what the oracle lifter is trained on);
- ``tokenized``: the true levels encoded and decoded by the tokenizer (the floor of anything the prior generates);
- ``generated``: the prior's argmax tokens decoded (HiPART's levels without snapping);
- ``snapped``: ``generated`` moved onto the observed joints (`recipes.hipart.centring.snap_levels`, detail 1);
- ``from_joints``: the level regressors applied to the observed joints (snapping with detail 0: a fixed affine
  function of the input, no prior involved).

Also the sparse-only lifter's MPJPE, and the oracle lifter on the true levels with independent Gaussian noise of a
given mean 2D error (how precise levels must be to help). The level regressors come from the prior's export, or
are fitted on the training split when an older export lacks them. Writes ``diagnose_<split>.json`` into the run.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from .centring import clean_centre, snap_levels
from .data import make_dataset
from .protocols import _collect, _subsample
from .inference import HiPART, root_relative
from .launch import add_command, command_main
from .train_lifter import load_lifter
from .train_prior import fit_regressors
from skeletok.data.sets.fileformat import load_dataset

__all__ = ["diagnose_levels", "add_parser", "main"]

NOISE_PX = (2.0, 5.0, 10.0, 20.0)


def _regressors(model: HiPART, data: Path) -> dict[str, torch.Tensor]:
    prior = model.prior
    if all(hasattr(prior, f"{k}_regressor") for k in ("joint", "dense", "fine")):
        return {k: getattr(prior, f"{k}_regressor").cpu() for k in ("joint", "dense", "fine")}
    return fit_regressors(make_dataset(data, split="train"))


@torch.inference_mode()
def diagnose_levels(run_dir: str | Path, *, split: str = "val", max_samples: int = 1000, seed: int = 0,
                    out: str | Path | None = None, progress: bool = True) -> dict:
    """Measure the level sources of the module docstring on ``split`` and write ``diagnose_<split>.json``.

    Args:
        run_dir: a HiPART run (tokenizer, prior and the three lifters).
        split: ``val``, ``test``, ``train`` or ``all`` of the run's dataset.
        max_samples: at most this many evenly spaced (frame, camera) samples (0 = all).
        seed: seed of the noise added to the true levels.
        out: output JSON path; default ``run_dir/diagnose_<split>.json``.
        progress: print the table.

    Returns:
        ``{"meta", "levels": {source: {"dense_px", "fine_px", "mpjpe_hipart", "mpjpe_oracle"}},
        "sparse_only", "oracle_noise": {px: mpjpe}}`` (millimetres and pixels).
    """
    run_dir = Path(run_dir)
    model = HiPART.load(run_dir, device="cpu")
    data = Path(model.data_file)
    lifters = {m: load_lifter(run_dir / f"lifter_{m}.pt")[0] for m in ("sparse_only", "oracle")}
    keep = _subsample(len(make_dataset(data, split=split)), max_samples)
    c = _collect(data, split, None, seed, keep)
    widths = torch.as_tensor(np.asarray(load_dataset(data)["cam_size"])[:, 0], dtype=torch.float32)
    half_w = widths[c["camera"]][:, None] / 2  # normalised units -> pixels
    xs, vis, gt_mm = c["sparse_2d"], c["sparse_visible"], c["sparse_3d"] * 1000.0
    reg = _regressors(model, data)

    dense_gen, fine_gen, *_ = model.densify(xs, vis)
    centre = clean_centre(c["sparse_2d_clean"])
    dense_tok, fine_tok = (x + centre for x in model.tokenizer.decode(*model.tokenizer.encode(c["fine_2d"] - centre)))
    kw = dict(joint_regressor=reg["joint"], dense_regressor=reg["dense"], fine_regressor=reg["fine"])
    sources = {
        "true": (c["dense_2d"], c["fine_2d"]),
        "tokenized": (dense_tok, fine_tok),
        "generated": (dense_gen, fine_gen),
        "snapped": snap_levels(dense_gen, fine_gen, xs, vis, detail=1.0, **kw),
        "from_joints": snap_levels(dense_gen, fine_gen, xs, vis, detail=0.0, **kw),
    }

    def px(a, b):
        return float(((a - b).norm(dim=-1) * half_w).mean())

    def mpjpe(joints):
        return float((root_relative(joints.float()) * 1000.0 - gt_mm).norm(dim=-1).mean())

    report: dict = {"meta": {"run": str(run_dir), "data": str(data), "split": split, "samples": int(xs.shape[0]),
                             "seed": seed, "input": "clean sparse 2D (ground truth), argmax tokens"},
                    "sparse_only": mpjpe(lifters["sparse_only"]([xs], [vis])), "levels": {}, "oracle_noise": {}}
    for name, (dense, fine) in sources.items():
        report["levels"][name] = {
            "dense_px": px(dense, c["dense_2d"]), "fine_px": px(fine, c["fine_2d"]),
            "mpjpe_hipart": mpjpe(model.lifter([xs, dense, fine], [vis, None, None])),
            "mpjpe_oracle": mpjpe(lifters["oracle"]([xs, dense, fine], [vis, None, None])),
        }
    g = torch.Generator().manual_seed(seed)
    for noise in NOISE_PX:  # a 2D Gaussian's mean norm is sigma * sqrt(pi / 2)
        sigma = noise / math.sqrt(math.pi / 2) / half_w[..., None]
        noisy = [x + torch.randn(x.shape, generator=g) * sigma for x in (c["dense_2d"], c["fine_2d"])]
        report["oracle_noise"][f"{noise:g}"] = mpjpe(lifters["oracle"]([xs, *noisy], [vis, None, None]))
    out = Path(out) if out else run_dir / f"diagnose_{split}.json"
    out.write_text(json.dumps(report, indent=2))
    if progress:
        print(format_table(report))
    return report


def format_table(report: dict) -> str:
    """The report as a markdown table (one row per level source)."""
    lines = [f"{report['meta']['samples']} {report['meta']['split']} samples; sparse-only lifter "
             f"{report['sparse_only']:.1f} mm", "",
             "| levels | dense px | fine px | HiPART lifter mm | oracle lifter mm |", "|---|---|---|---|---|"]
    for name, row in report["levels"].items():
        lines.append(f"| {name} | {row['dense_px']:.1f} | {row['fine_px']:.1f} | {row['mpjpe_hipart']:.1f} | "
                     f"{row['mpjpe_oracle']:.1f} |")
    noise = ", ".join(f"{k} px: {v:.1f}" for k, v in report["oracle_noise"].items())
    return "\n".join(lines + ["", f"oracle lifter on true levels + noise (mean 2D error): {noise} mm"])


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="HiPART run directory")
    parser.add_argument("--split", default="val", choices=["val", "test", "train", "all"])
    parser.add_argument("--max-samples", type=int, default=1000, help="evenly spaced samples (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path (default: RUN/diagnose_SPLIT.json)")


def _run(args: argparse.Namespace) -> int:
    diagnose_levels(args.run, split=args.split, max_samples=args.max_samples, seed=args.seed, out=args.out)
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart diagnose``."""
    add_command(subparsers, "diagnose", help="where the generated levels lose what the true levels carry",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
