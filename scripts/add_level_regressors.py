"""Give the priors of a run trained before level regressors existed the regressors that snapping needs.

``skeletok hipart train-prior`` exports, beside the prior, the joint regressor and the level regressors fitted on
its training poses (`recipes.hipart.train_prior.fit_regressors`); a lifter trained with ``snap_levels=true``
needs them. Runs trained before they existed (session 4 and earlier) have the joint regressor only. This script
fits the level regressors the way ``train-prior`` does (on the prior's own training items: the whole training
split for ``prior.pt``, the other folds for ``prior_fold<k>.pt``) and writes them into the exports in place
(atomically), checking that the refitted joint regressor equals the stored one (same data, same poses).

Run: ``python scripts/add_level_regressors.py RUN_DIR [--data FILE] [--densifier-steps N [--densifier-lr LR]]``
(``--data``: default the priors' own file; ``--densifier-steps N``: also fit the learned level map of ``train-prior
densifier_steps=N densifier_lr=LR``, `recipes.hipart.densifier`, on the same items, replacing the stored one: the
way to try another level map on a trained run without retraining its priors).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's `recipes` package

from recipes.hipart.checkpoint import atomic_save
from recipes.hipart.data import Selected, sequence_folds, train_set_of
from recipes.hipart.config import PriorConfig
from recipes.hipart.train_prior import densifier_export, fit_regressors


def add_level_regressors(run_dir: Path, data: str | None = None, densifier_steps: int = 0,
                         densifier_lr: float | None = None) -> list[Path]:
    """Fit and store the level regressors of every ``prior*.pt`` in ``run_dir`` (with ``densifier_steps > 0`` also
    the learned level map that ``train-prior densifier_steps=N densifier_lr=LR`` would export; ``densifier_lr``
    None = the learning rate each prior was trained with); returns the files written."""
    written = []
    for path in sorted(run_dir.glob("prior*.pt")):
        payload = torch.load(path, map_location="cpu", weights_only=False)
        file = data or payload["extra"]["data_file"]
        names = {f.name for f in dataclasses.fields(PriorConfig)}
        cfg = PriorConfig(**{k: v for k, v in payload["config"].items() if k in names})  # as the prior was trained
        items = train_set_of(cfg, file)
        if cfg.folds:
            fold_of = torch.from_numpy(sequence_folds(file, cfg.folds, seed=cfg.seed))[items.item_sequence]
            items = Selected(items, torch.nonzero(fold_of != cfg.fold).flatten())
        regressors = fit_regressors(items)
        stored = torch.tensor(payload["extra"]["joint_regressor"])
        if not torch.allclose(stored, regressors["joint"], atol=1e-4):
            raise ValueError(f"{path}: the refitted joint regressor differs from the stored one by "
                             f"{(stored - regressors['joint']).abs().max():.2e}; pass the prior's training data")
        payload["extra"]["level_regressors"] = {"dense": regressors["dense"].tolist(),
                                                "fine": regressors["fine"].tolist()}
        if densifier_steps:
            lr = cfg.densifier_lr if densifier_lr is None else densifier_lr
            payload["extra"]["level_densifier"] = densifier_export(items, steps=densifier_steps, seed=cfg.seed, lr=lr)
            payload["config"].update(densifier_steps=densifier_steps, densifier_lr=lr)
        atomic_save(payload, path)
        written.append(path)
    if not written:
        raise FileNotFoundError(f"no prior*.pt in {run_dir}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--densifier-steps", type=int, default=0,
                        help="also fit the learned level map (recipes.hipart.densifier) for this many batches")
    parser.add_argument("--densifier-lr", type=float, default=None,
                        help="peak learning rate of that level map (default: the one each prior was trained with)")
    args = parser.parse_args()
    for path in add_level_regressors(args.run_dir, args.data, args.densifier_steps, args.densifier_lr):
        print(f"level regressors added to {path}")


if __name__ == "__main__":
    main()
