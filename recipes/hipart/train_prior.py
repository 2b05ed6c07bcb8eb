"""Stage 2 of HiPART: train the Hierarchical AutoRegressive prior (HiARM) over the frozen tokenizer's tokens.

Launch (single process, CPU or one GPU; ``tokenizer`` defaults to ``run_dir/tokenizer.pt``)::

    python -m recipes.hipart.train_prior --preset demo run_dir=runs/demo
    skeletok hipart train-prior --preset h36m data=data/h36m.npz run_dir=runs/h36m

Launch (DDP; ``batch_size`` is the global batch)::

    torchrun --nproc_per_node 4 -m recipes.hipart.train_prior --preset h36m run_dir=runs/h36m

Resume a stopped run with the same command plus ``--resume``.

Targets: the tokens ``(q_s, q_d)`` of each training sample's clean fine pose under the frozen stage-1
tokenizer. With ``tokens=precompute`` (default) they are computed once, in index order, before training:
the tokenizer is frozen and its input does not change between epochs, so this is exact, and it costs one
encoder pass over the training set instead of one per epoch. ``tokens=online`` encodes every batch instead.
Condition: ``sparse_2d`` (noisy) and ``sparse_visible`` after the Dataset's occlusion augmentation
(`recipes.hipart.data.occlusion_of`), drawn afresh every epoch. The prior's code tables are the tokenizer's
(``load_codebooks``, frozen).

Joint regressor: the export also carries the ``(17, 96)`` weights of `recipes.hipart.centring.fit_joint_regressor`
fitted on the training poses (``extra["joint_regressor"]``); `load_prior` attaches them to the prior as the
buffer ``joint_regressor``, which generation uses to place the levels when the pelvis is hidden; and the level
regressors (``extra["level_regressors"]``: affine maps from the sparse pose to the dense and fine poses), which
snapping (`recipes.hipart.centring.snap_levels`, ``train-lifter snap_levels=true``) uses. With
``densifier_steps > 0`` also a learned level map (``extra["level_densifier"]``, `recipes.hipart.densifier`), fitted on
the same clean training poses, which `load_prior` attaches as the submodule ``level_densifier`` and snapping then
uses in place of the affine regressors.

Out-of-fold priors: ``folds=K fold=k`` trains on the training takes outside fold k only
(`recipes.hipart.data.sequence_folds`) and writes ``run_dir/prior_fold<k>.pt`` (and ``run_dir/prior_fold<k>/``).

Output: ``run_dir/prior.pt`` and ``run_dir/prior/`` (config.json, metrics.jsonl, checkpoint.pt).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .centring import clean_centre, encode_centred, fit_joint_regressor, fit_level_regressor, observed_centre
from .checkpoint import load_exported
from .config import PriorConfig
from .data import (Attached, Selected, occlusion_of, ordered_batches, require_levels, resolve_data, sequence_folds,
                   train_set_of)
from .densifier import LevelDensifier, fit_densifier
from .distributed import DistInfo, init_distributed
from .launch import add_stage_parser, stage_main
from .loop import configure_threads, export_stage, seed_all, train
from .train_tokenizer import load_tokenizer
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer

__all__ = ["NAME", "prior_name", "prior_kwargs", "encode_dataset", "clean_poses", "fit_regressors", "densifier_export",
           "run", "load_prior", "add_parser", "main"]

NAME = "prior"


def prior_name(cfg: PriorConfig) -> str:
    """``prior`` for the run's prior, ``prior_fold<k>`` for out-of-fold prior k."""
    return f"{NAME}_fold{cfg.fold}" if cfg.folds else NAME


def prior_kwargs(cfg: PriorConfig, tokenizer: HierarchicalPoseTokenizer) -> dict:
    """Constructor keyword arguments (plain values) of the prior over ``tokenizer``'s codebooks."""
    sparse, dense = tokenizer.codebook.codes(0), tokenizer.codebook.codes(1)
    return dict(num_parts=tokenizer.num_parts, dense_per_part=tokenizer.dense_per_part,
                codebook_size_sparse=int(sparse.shape[0]), codebook_size_dense=int(dense.shape[0]),
                code_dim=(int(sparse.shape[1]), int(dense.shape[1])), dim=cfg.dim, depth=cfg.depth,
                heads=cfg.heads, lsab_depth=cfg.lsab_depth, dropout=cfg.dropout, lambda_d=cfg.lambda_d)


@torch.no_grad()
def encode_dataset(tokenizer: HierarchicalPoseTokenizer, dataset, *, batch_size: int = 512,
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens of every sample's ``fine_2d``, centred on its clean pelvis (`recipes.hipart.centring`), in index order.

    Returns:
        ``q_s (n, p)`` and ``q_d (n, p, r)`` long, on the CPU.
    """
    tokenizer = tokenizer.to(device).eval()
    q_s, q_d = [], []
    for batch in ordered_batches(dataset, batch_size):
        s, d = encode_centred(tokenizer, batch["fine_2d"].to(device), batch["sparse_2d_clean"].to(device))
        q_s.append(s.cpu())
        q_d.append(d.cpu())
    return torch.cat(q_s), torch.cat(q_d)


@torch.no_grad()
def clean_poses(dataset, *, max_samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Up to ``max_samples`` evenly spaced clean training poses of ``dataset``, centred on the clean pelvis:
    ``sparse (m, 17, 2)``, ``dense (m, 48, 2)``, ``fine (m, 96, 2)``."""
    idx = torch.linspace(0, len(dataset) - 1, min(len(dataset), max_samples)).round().long().unique().tolist()
    cols: dict[str, list[torch.Tensor]] = {"sparse": [], "dense": [], "fine": []}
    for batch in ordered_batches(Selected(dataset, idx), 1024):
        centre = clean_centre(batch["sparse_2d_clean"])
        for key, name in (("sparse", "sparse_2d_clean"), ("dense", "dense_2d"), ("fine", "fine_2d")):
            cols[key].append(batch[name] - centre)
    return tuple(torch.cat(cols[k]) for k in ("sparse", "dense", "fine"))


def fit_regressors(dataset, *, max_samples: int = 5000) -> dict[str, torch.Tensor]:
    """The point regressors of generation, fitted on up to ``max_samples`` evenly spaced clean training poses:
    ``joint`` ``(17, 96)`` (`fit_joint_regressor`, sparse from fine) and the level regressors ``dense``
    ``(96, 33)`` and ``fine`` ``(192, 33)`` (`fit_level_regressor`, dense/fine from sparse; `snap_levels`)."""
    sparse, dense, fine = clean_poses(dataset, max_samples=max_samples)
    return {"joint": fit_joint_regressor(fine, sparse), "dense": fit_level_regressor(sparse, dense),
            "fine": fit_level_regressor(sparse, fine)}


def densifier_export(dataset, *, steps: int, seed: int, lr: float, max_samples: int = 50_000) -> dict:
    """A `recipes.hipart.densifier.LevelDensifier` fitted (``steps`` batches at peak learning rate ``lr``, ``seed``)
    on up to ``max_samples`` clean training poses of ``dataset``, as the export's ``extra["level_densifier"]``
    (``kwargs``, ``state_dict``)."""
    sparse, dense, fine = clean_poses(dataset, max_samples=max_samples)
    model = fit_densifier(sparse, torch.cat((dense, fine), dim=1), steps=steps, seed=seed, lr=lr)
    return {"kwargs": model.kwargs(), "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}


def _step(tokenizer: HierarchicalPoseTokenizer | None):
    def step(net: torch.nn.Module, batch: dict):
        if tokenizer is None:
            q_s, q_d = batch["q_s"], batch["q_d"]
        else:
            q_s, q_d = encode_centred(tokenizer, batch["fine_2d"], batch["sparse_2d_clean"])
        x_s, vis = batch["sparse_2d"], batch["sparse_visible"]
        logits_s, _, loss, terms = net(x_s - observed_centre(x_s, vis), vis, q_s, q_d,
                                       return_loss_breakdown=True)
        metrics = dict(terms)
        metrics["visible_fraction"] = batch["sparse_visible"].float().mean()
        metrics["top1_sparse_first_part"] = (logits_s[:, 0].argmax(-1) == q_s[:, 0]).float().mean()
        return loss, metrics

    return step


def run(cfg: PriorConfig, *, resume: bool = False, info: DistInfo | None = None) -> Path:
    """Train the prior on the frozen tokenizer's tokens and export ``run_dir/prior.pt``.

    Args:
        cfg: stage-2 config (`recipes.hipart.presets.get_preset("prior", ...)`).
        resume: continue from ``run_dir/prior/checkpoint.pt``.
        info: the process's `DistInfo` (default: `init_distributed(cfg.device)`).

    Returns:
        The exported model path.

    Raises:
        FileNotFoundError: when the tokenizer file does not exist.
    """
    configure_threads(cfg)
    info = info or init_distributed(cfg.device)
    data = resolve_data(cfg, info)
    require_levels(data, "the prior")
    tok_path = Path(cfg.tokenizer) if cfg.tokenizer else Path(cfg.run_dir) / "tokenizer.pt"
    tokenizer = load_tokenizer(tok_path).to(info.device)
    name = prior_name(cfg)
    clean = train_set_of(cfg, data)
    base = train_set_of(cfg, data, occlusion=occlusion_of(cfg))
    if cfg.folds:  # out-of-fold prior: the training items outside fold `cfg.fold`
        fold_of = torch.from_numpy(sequence_folds(data, cfg.folds, seed=cfg.seed))[clean.item_sequence]
        keep = torch.nonzero(fold_of != cfg.fold).flatten()
        base, clean = Selected(base, keep), Selected(clean, keep)
    if cfg.tokens == "precompute":
        q_s, q_d = encode_dataset(tokenizer, clean, device=info.device)
        train_set, step_tokenizer = Attached(base, q_s=q_s, q_d=q_d), None
    else:
        train_set, step_tokenizer = base, tokenizer
    kwargs = prior_kwargs(cfg, tokenizer)
    seed_all(cfg.seed)
    model = HierarchicalARPrior(**kwargs)
    with torch.no_grad():
        model.load_codebooks(tokenizer.codebook.codes(0).cpu(), tokenizer.codebook.codes(1).cpu(), freeze=True)
    extra = {"data_file": str(data), "tokenizer_file": str(tok_path)}
    model = train(cfg, name=name, model=model, train_set=train_set, step=_step(step_tokenizer), info=info,
                  resume=resume, extra_config=extra)
    regressors = fit_regressors(clean)
    extra["joint_regressor"] = regressors["joint"].tolist()
    extra["level_regressors"] = {"dense": regressors["dense"].tolist(), "fine": regressors["fine"].tolist()}
    if cfg.densifier_steps:
        extra["level_densifier"] = densifier_export(clean, steps=cfg.densifier_steps, seed=cfg.seed,
                                                     lr=cfg.densifier_lr)
    return export_stage(cfg, name, model, kwargs=kwargs, extra=extra, info=info)


def load_prior(path: str | Path, *, map_location="cpu") -> HierarchicalARPrior:
    """The exported stage-2 prior at ``path``, in eval mode, parameters frozen; the regressors of its export (if
    any, `fit_regressors`) attached as the non-persistent buffers ``joint_regressor`` ``(17, 96)``,
    ``dense_regressor`` ``(96, 33)`` and ``fine_regressor`` ``(192, 33)``."""
    model, payload = load_exported(path, HierarchicalARPrior, map_location=map_location)
    extra = payload.get("extra", {})
    weights = {"joint_regressor": extra.get("joint_regressor"),
               **{f"{k}_regressor": v for k, v in (extra.get("level_regressors") or {}).items()}}
    for name, value in weights.items():
        if value is not None:
            model.register_buffer(name, torch.tensor(value, dtype=torch.float32), persistent=False)
    if "level_densifier" in extra:
        densifier = LevelDensifier(**extra["level_densifier"]["kwargs"])
        densifier.load_state_dict(extra["level_densifier"]["state_dict"])
        model.level_densifier = densifier.to(map_location).eval()
    return model.requires_grad_(False)


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart train-prior``."""
    add_stage_parser(subparsers, "train-prior", NAME, run, help="stage 2: train the HiARM prior")


def main(argv: list[str] | None = None) -> int:
    return stage_main(NAME, run, "HiPART stage 2: train the HiARM prior", argv)


if __name__ == "__main__":
    raise SystemExit(main())

