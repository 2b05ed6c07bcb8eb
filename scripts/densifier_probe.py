"""Probe of issue 8: how well can the dense and fine levels be predicted from the clean sparse pose at all, and does
a lifter gain from levels that good?

HiPART's generated levels (tokenizer + prior, snapped) miss the true points by 9-13 px on unseen takes, the affine
map of the 17 joints (`recipes.hipart.centring.fit_level_regressor`) by about 7 px. This script fits a direct
*densifier* instead (`recipes.hipart.densifier.fit_densifier`: the affine map plus an MLP on the pelvis-centred,
scale-normalised joints that regresses the remaining residual of all 144 level points, L1 loss), and then trains
the recipe's lifter (`skeletok.HierarchicalLifter`, the ``demo`` preset's width and depth, Adam, batch 64) on clean
input with the levels from

- ``sparse``: no levels (the sparse-only baseline);
- ``affine``: the affine map of the joints (no learned detail);
- ``mlp_oof``: the densifier, out of fold (2 folds by take: a training sample's levels come from a densifier that
  never saw its take, as the recipe's out-of-fold priors);
- ``mlp_in``: the densifier fitted on the whole training split (in sample);
- ``oracle``: the true levels,

every lifter warm-started from one sparse-only lifter (``--warm-steps``) and trained ``--steps`` more, and scores
every one on the *validation* split (clean input, fixed cameras; the test split is never read). Training items: two
random-view draws of the training split (``random_views=0.5``, as the presets). Clean input only: the densifier
does not handle hidden joints.

Run: ``python scripts/densifier_probe.py [--data FILE] [--seeds 3] [--out densifier_probe.json]``

Prints one JSON object: per seed and as mean +- std, the levels' error (px on a 1000-px image, dense and fine
together) of each source on the training items and on validation, and each lifter's validation MPJPE (mm).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's `recipes` package

from recipes.hipart.centring import regress_levels
from recipes.hipart.data import make_dataset, sequence_folds
from recipes.hipart.densifier import fit_densifier
from recipes.hipart.train_lifter import warm_start
from skeletok.lifter import HierarchicalLifter

PX = 500.0  # normalised units -> pixels of the 1000-px rig images
KEYS = ("sparse_2d_clean", "dense_2d", "fine_2d", "sparse_3d")
SOURCES = ("sparse", "affine", "mlp_oof", "mlp_in", "oracle")


def load(path: str, split: str, random_views: float, draws: int) -> dict:
    """The clean columns of ``draws`` epochs' items of ``split`` (levels concatenated as ``levels (n, 144, 2)``)."""
    cols: dict[str, list] = {k: [] for k in (*KEYS, "seq")}
    for e in range(draws):
        data = make_dataset(path, split=split, random_views=random_views, seed=e)
        data.set_epoch(e)
        items = data.__getitems__(list(range(len(data))))
        for k in KEYS:
            cols[k].append(torch.stack([it[k] for it in items]))
        cols["seq"].append(data.item_sequence)
    out = {k: torch.cat(v) for k, v in cols.items()}
    out["levels"] = torch.cat((out.pop("dense_2d"), out.pop("fine_2d")), dim=1)
    return out


def _lifter(points: tuple[int, ...]) -> HierarchicalLifter:
    return HierarchicalLifter(level_points=points, num_joints=17, dim=48, depth=2, heads=4, dropout=0.0)


def train_lifter(net, inputs, target, steps: int, seed: int):
    """Adam 2e-3, batch 64, x0.65 every 500 steps (the demo preset's schedule), MPJPE loss."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 500, 0.65)
    net.train()
    for _ in range(steps):
        i = torch.randint(0, len(target), (64,))
        loss = (net([x[i] for x in inputs]) - target[i]).norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def mpjpe_mm(net, inputs, target) -> float:
    return float((net(inputs) - target).norm(dim=-1).mean()) * 1000.0


def px(a, b) -> float:
    return float((a - b).norm(dim=-1).mean()) * PX


def probe(tr: dict, va: dict, fold: torch.Tensor, *, seed: int, densifier_steps: int, warm_steps: int,
          steps: int) -> dict:
    """One seed: the levels of every source, their errors, and every lifter's validation MPJPE."""
    s_tr, s_va = tr["sparse_2d_clean"], va["sparse_2d_clean"]
    full = fit_densifier(s_tr, tr["levels"], steps=densifier_steps, seed=seed)

    def affine(s):  # the densifier's own affine part: the level regressors alone
        return regress_levels(full.affine, s)

    oof = torch.zeros_like(tr["levels"])
    for k in fold.unique().tolist():
        fit = fit_densifier(s_tr[fold != k], tr["levels"][fold != k], steps=densifier_steps, seed=seed + 1 + k)
        oof[fold == k] = fit(s_tr[fold == k])
    levels = {"affine": (affine(s_tr), affine(s_va)), "mlp_oof": (oof, full(s_va)),
              "mlp_in": (full(s_tr), full(s_va)), "oracle": (tr["levels"], va["levels"])}
    out = {"levels_px_train": {k: px(v[0], tr["levels"]) for k, v in levels.items()},
           "levels_px_val": {k: px(v[1], va["levels"]) for k, v in levels.items()}, "mpjpe_mm_val": {}}
    torch.manual_seed(seed)
    warm = train_lifter(_lifter((17,)), [s_tr], tr["sparse_3d"], warm_steps, seed)
    for source in SOURCES:
        points = (17,) if source == "sparse" else (17, 48, 96)
        net = warm_start(_lifter(points), warm)
        split = (lambda lv: [lv[:, :48], lv[:, 48:]]) if source != "sparse" else (lambda lv: [])
        lv_tr, lv_va = levels.get(source, (None, None))
        net = train_lifter(net, [s_tr, *split(lv_tr)], tr["sparse_3d"], steps, seed + 100)
        out["mpjpe_mm_val"][source] = mpjpe_mm(net, [s_va, *split(lv_va)], va["sparse_3d"])
        print(f"seed {seed} {source}: {out['mpjpe_mm_val'][source]:.1f} mm", file=sys.stderr, flush=True)
    return out


def summarise(runs: list[dict]) -> dict:
    def stat(values):
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    return {group: {k: stat([r[group][k] for r in runs]) for k in runs[0][group]} for group in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path("~/.cache/skeletok/default-v3-max150.npz").expanduser()))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--densifier-steps", type=int, default=4000)
    parser.add_argument("--warm-steps", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    tr = load(args.data, "train", 0.5, draws=2)
    va = load(args.data, "val", 0.0, draws=1)
    fold = torch.from_numpy(sequence_folds(args.data, 2, seed=0))[tr["seq"]].clamp_min(0)
    runs = [probe(tr, va, fold, seed=s, densifier_steps=args.densifier_steps, warm_steps=args.warm_steps,
                  steps=args.steps) for s in range(args.seeds)]
    report = {"data": args.data, "train_items": len(tr["seq"]), "val_items": len(va["seq"]), "seeds": runs,
              "summary": summarise(runs), "seconds": round(time.time() - start, 1)}
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
