"""Stage 1 of HiPART: train the Multi-Scale Skeletal Tokenizer (MSST) on fine and dense 2D poses.

Launch (single process, CPU or one GPU)::

    python -m recipes.hipart.train_tokenizer --preset demo run_dir=runs/demo
    skeletok hipart train-tokenizer --preset h36m data=data/h36m.npz run_dir=runs/h36m

Launch (DDP, one process per GPU, or ``gloo`` on CPU; ``batch_size`` is the global batch)::

    torchrun --nproc_per_node 4 -m recipes.hipart.train_tokenizer --preset h36m run_dir=runs/h36m

Resume a stopped run with the same command plus ``--resume``. Under DDP the codebook statistics (k-means
initialisation, EMA counts and sums) are all-reduced across ranks (``sync_codebook=True``).

Input per sample: ``fine_2d (96, 2)`` (encoder input and fine target; ``fine_visible`` marks points a file
does not know), ``dense_2d (48, 2)`` (dense target; ``dense_visible`` marks the points left out of the dense
loss, like the fine ones) and ``action`` (global alignment term), all clean (no
occlusion: the tokenizer's own ``mask_rate`` hides points).
Output: ``run_dir/tokenizer.pt`` (`recipes.hipart.checkpoint.export_model` format) and ``run_dir/tokenizer/``
(config.json, metrics.jsonl, checkpoint.pt).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .centring import clean_centre
from .checkpoint import load_exported
from .config import TokenizerConfig
from .data import dataset_meta, require_levels, resolve_data, train_set_of
from .distributed import DistInfo, init_distributed
from .launch import add_stage_parser, stage_main
from .loop import configure_threads, export_stage, seed_all, train
from skeletok.tokenizer import HierarchicalPoseTokenizer

__all__ = ["NAME", "tokenizer_kwargs", "run", "load_tokenizer", "add_parser", "main"]

NAME = "tokenizer"


def tokenizer_kwargs(cfg: TokenizerConfig, meta: dict) -> dict:
    """Constructor keyword arguments (plain values) of the stage-1 tokenizer for this config and dataset."""
    return dict(num_fine=len(meta["parts_fine"]), num_dense=len(meta["parts_dense"]), num_parts=meta["num_parts"],
                dense_per_part=3, fine_parts=meta["parts_fine"], dense_parts=meta["parts_dense"], dim=cfg.dim,
                depth=cfg.depth, code_dim=cfg.code_dim, codebook_size_sparse=cfg.codebook_size_sparse,
                codebook_size_dense=cfg.codebook_size_dense,
                num_actions=meta["num_actions"] if cfg.use_actions else 0, projection=cfg.projection,
                mask_rate=cfg.mask_rate, beta=cfg.beta, lambda_local=cfg.lambda_local,
                lambda_global=cfg.lambda_global, tau=cfg.tau, local_negatives=cfg.local_negatives,
                dropout=cfg.dropout, decay=cfg.decay)


def _unwrap(net: torch.nn.Module) -> torch.nn.Module:
    return getattr(net, "module", net)


def _step(use_actions: bool):
    def step(net: torch.nn.Module, batch: dict):
        action = batch["action"] if use_actions else None
        centre = clean_centre(batch["sparse_2d_clean"])
        _, _, q_s, q_d, loss, terms = net(batch["fine_2d"] - centre, batch["dense_2d"] - centre, action=action,
                                           visibility=batch["fine_visible"], dense_visibility=batch["dense_visible"],
                                           return_loss_breakdown=True)
        codebook = _unwrap(net).codebook
        metrics = {k: v for k, v in terms.items() if k != "total"}
        metrics["perplexity_sparse"] = codebook.perplexity(0, q_s)
        metrics["perplexity_dense"] = codebook.perplexity(1, q_d)
        return loss, metrics

    return step


def run(cfg: TokenizerConfig, *, resume: bool = False, info: DistInfo | None = None) -> Path:
    """Train the tokenizer and export ``run_dir/tokenizer.pt``.

    Args:
        cfg: stage-1 config (`recipes.hipart.presets.get_preset("tokenizer", ...)`).
        resume: continue from ``run_dir/tokenizer/checkpoint.pt``.
        info: the process's `DistInfo` (default: `init_distributed(cfg.device)`).

    Returns:
        The exported model path.
    """
    configure_threads(cfg)
    info = info or init_distributed(cfg.device)
    data = resolve_data(cfg, info)
    require_levels(data, "the tokenizer")
    meta = dataset_meta(data)
    kwargs = tokenizer_kwargs(cfg, meta)
    seed_all(cfg.seed)
    model = HierarchicalPoseTokenizer(**kwargs, sync_codebook=info.distributed)
    train_set = train_set_of(cfg, data)
    model = train(cfg, name=NAME, model=model, train_set=train_set, step=_step(cfg.use_actions and
                  meta["num_actions"] > 0), info=info, resume=resume, extra_config={"data_file": str(data)},
                  find_unused_parameters=True)
    return export_stage(cfg, NAME, model, kwargs=kwargs, extra={"data_file": str(data)}, info=info)


def load_tokenizer(path: str | Path, *, map_location="cpu") -> HierarchicalPoseTokenizer:
    """The exported stage-1 tokenizer at ``path``, in eval mode, parameters frozen."""
    model, _ = load_exported(path, HierarchicalPoseTokenizer, map_location=map_location)
    return model.requires_grad_(False)


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart train-tokenizer``."""
    add_stage_parser(subparsers, "train-tokenizer", NAME, run, help="stage 1: train the MSST tokenizer")


def main(argv: list[str] | None = None) -> int:
    return stage_main(NAME, run, "HiPART stage 1: train the MSST tokenizer", argv)


if __name__ == "__main__":
    raise SystemExit(main())
