"""Probe of issue 8 (session 18): would HiPART do better to lift its mostly hidden poses with a lifter of their own?

The presets' HiPART lifter lifts a pose seeing fewer than ``level_min_visible`` joints with its levels hidden, in the
same network that lifts the others with levels. This probe scores the alternative: every pose seeing fewer than k of
its 17 joints (k = 12, 14, 17) lifted by a separate level-less lifter, the others by the run's HiPART lifter. The
separate lifter is the run's sparse-only lifter (``lifter_sparse_only.pt``), or with ``--fallback RUN2`` the HiPART
lifter of another run lifting with its levels hidden (e.g. one trained with ``level_dropout=1.0`` and the mesh 3D
targets ``aux_3d``, the baseline of recipes/hipart/README.md, "Mesh 3D targets for both lifters"), which is then
also the baseline the routes are compared with.

The samples and occlusion draws are those of `skeletok hipart evaluate` (seed 0, ``--max-samples`` evenly spaced), so
the ``hipart`` and ``sparse_only`` columns equal its report's occlusion tables. Prints one markdown table (MPJPE mm,
17 cells: clean, masks and crops with and without 2D noise; "ahead": cells at or below the baseline) and writes
``--out`` (JSON: per cell the MPJPE of every column and the fraction of poses each route sends to the separate
lifter).

Run: ``python scripts/route_probe.py RUN [--fallback RUN2] [--split val] [--max-samples 1000] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's `recipes` package

from recipes.hipart.data import make_dataset  # noqa: E402
from recipes.hipart.inference import HiPART, root_relative  # noqa: E402
from recipes.hipart.protocols import CROP_RATIOS, MASK_RATIOS, _collect, _subsample, sweep_occlusion  # noqa: E402
from recipes.hipart.train_lifter import load_lifter  # noqa: E402
from skeletok.data.views.occlusion import Occlusion  # noqa: E402

ROUTES = (12, 14, 17)


def cells(noise_px: float = 5.0) -> list[tuple[str, Occlusion]]:
    """The evaluation's 17 cells, named as its report's occlusion tables (``"<protocol> <ratio>"``)."""
    out = []
    for noisy in (False, True):
        for protocol, ratios in (("mask", MASK_RATIOS), ("crop", CROP_RATIOS)):
            for r in ratios:
                if r == 0 and (noisy or protocol == "crop"):  # clean input once
                    continue
                out.append((f"{protocol}{'_noisy' if noisy else ''} {r}",
                            sweep_occlusion(protocol, r, noise_px if noisy else 0.0)))
    return out


@torch.inference_mode()
def _joint_errors(lift, batch: dict, batch_size: int = 512) -> torch.Tensor:
    """``(n,)`` mean joint error (mm) of ``lift(sparse_2d, visible) -> (b, 17, 3)`` metres, root-relative."""
    x, vis, gt = batch["sparse_2d"], batch["sparse_visible"], batch["sparse_3d"]
    pred = torch.cat([lift(x[i:i + batch_size], vis[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return ((pred - gt) * 1000.0).norm(dim=-1).mean(-1)


def probe(run: Path, fallback: Path | None = None, *, split: str = "val", max_samples: int = 1000,
          data: Path | None = None) -> dict:
    """``{cell: {"hipart", "sparse_only" | "fallback", "route<k>", "routed<k>"}}``: MPJPE (mm) and routed fractions."""
    model = HiPART.load(run, device="cpu")
    lifters = {"hipart": lambda x, v: model.densify_and_lift(x, v)[4]}
    if fallback is None:
        sparse = load_lifter(run / "lifter_sparse_only.pt")[0]
        lifters["sparse_only"] = lambda x, v: root_relative(sparse([x], [v]))
    else:
        other = HiPART.load(fallback, device="cpu")
        lifters["fallback"] = lambda x, v: other.densify_and_lift(x, v, hide_levels=True)[4]
    base = "fallback" if fallback is not None else "sparse_only"
    data = Path(data or model.data_file)
    keep = _subsample(len(make_dataset(data, split=split)), max_samples)
    out = {}
    for name, occ in cells():
        batch = _collect(data, split, occ, 0, keep)
        err = {key: _joint_errors(lift, batch) for key, lift in lifters.items()}
        seen = batch["sparse_visible"].sum(-1)
        row = {key: float(e.mean()) for key, e in err.items()}
        for k in ROUTES:
            row[f"route{k}"] = float(torch.where(seen < k, err[base], err["hipart"]).mean())
            row[f"routed{k}"] = float((seen < k).float().mean())
        out[name] = row
    return out


def table(scores: dict) -> str:
    """Markdown: one row per column of `probe`, one column per cell, the 17-cell mean and the cells ahead."""
    base = "fallback" if "fallback" in next(iter(scores.values())) else "sparse_only"
    names = ["hipart", base, *(f"route{k}" for k in ROUTES)]
    lines = ["| lifter | " + " | ".join(scores) + " | mean | ahead |", "|---" * (len(scores) + 3) + "|"]
    for key in names:
        vals = [row[key] for row in scores.values()]
        ahead = sum(row[key] <= row[base] for row in scores.values())
        lines.append(f"| {key} | " + " | ".join(f"{v:.1f}" for v in vals)
                     + f" | {sum(vals) / len(vals):.1f} | {ahead}/{len(vals)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--fallback", type=Path, default=None,
                        help="run whose HiPART lifter, levels hidden, is the separate lifter and the baseline")
    parser.add_argument("--split", default="val")
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=None, help="dataset .npz (default: the run's own)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the scores")
    args = parser.parse_args(argv)
    scores = probe(args.run, args.fallback, split=args.split, max_samples=args.max_samples, data=args.data)
    if args.out is not None:
        args.out.write_text(json.dumps(scores, indent=1))
    print(table(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
