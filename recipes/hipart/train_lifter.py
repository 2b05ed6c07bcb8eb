"""Stage 3 of HiPART: train the lifter from 2D levels to root-relative 3D joints (MPJPE loss, metres).

Launch (single process, CPU or one GPU)::

    python -m recipes.hipart.train_lifter --preset demo run_dir=runs/demo mode=hipart
    skeletok hipart train-lifter --preset h36m run_dir=runs/h36m mode=sparse_only

Launch (DDP; ``batch_size`` is the global batch)::

    torchrun --nproc_per_node 4 -m recipes.hipart.train_lifter --preset h36m run_dir=runs/h36m mode=hipart

Resume a stopped run with the same command plus ``--resume``.

Modes (the lifter's input levels, concatenated along the point axis):

- ``hipart``: ``[sparse_2d, x̂_d, x̂_f]`` with the dense and fine poses *generated* from the occluded sparse
  pose by the frozen prior (argmax tokens) and decoded by the frozen tokenizer (``tokenizer``/``prior``
  default to ``run_dir/{tokenizer,prior}.pt``). With ``generated=once`` (default) the training set is
  occluded once (epoch 0's draw), the levels generated once for every sample, and the lifter trains on that
  fixed set: on a CPU the 16 autoregressive steps per sample would otherwise dominate training. With
  ``generated=online`` every batch is generated afresh from that epoch's occlusion draw.
  With ``oof_folds=K`` the training levels of a sample come from the out-of-fold prior ``run_dir/prior_fold<k>.pt``
  that never saw the sample's take (``train-prior folds=K fold=k``), so the lifter learns how wrong the levels
  are for unseen motion; evaluation and inference use the run's prior as always.
- ``sparse_only``: the 17 sparse points (the baseline; same architecture).
- ``oracle``: ``[sparse_2d, dense_2d, fine_2d]`` with the ground-truth dense and fine poses (the upper bound).

The sparse input is noisy and occluded (`recipes.hipart.data.occlusion_of`); hidden joints are passed as
invisible, never zero-filled. Target: ``sparse_3d`` (camera frame, root-relative, metres).
Output: ``run_dir/lifter_<mode>.pt`` and ``run_dir/lifter_<mode>/`` (config.json, metrics.jsonl, checkpoint.pt).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .centring import generate_centred, map_levels
from .checkpoint import load_exported
from .config import LifterConfig
from .data import (EpochDraws, TensorItems, occlusion_of, ordered_batches, require_levels, resolve_data,
                   sequence_folds, train_set_of)
from .distributed import DistInfo, init_distributed
from .launch import add_stage_parser, stage_main
from .level_gates import drop_levels, gate_reads_scores, lifted_visibility, part_ids_of
from .level_gates import few_joints_hidden, gated_visibility  # noqa: F401 (imported from here before session 12)
from .loop import config_diff, configure_threads, export_stage, seed_all, train
from .imputation import JointImputer, fit_joint_imputer
from .train_prior import clean_poses, load_prior
from .train_tokenizer import load_tokenizer
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer

__all__ = ["MODES", "lifter_kwargs", "lifter_inputs", "snap_of", "few_joints_hidden", "gated_visibility",
           "gate_reads_scores", "lifted_visibility", "part_ids_of", "generate_levels", "training_imputer",
           "mpjpe_loss", "warm_start", "LEVEL_FIELDS", "warm_lifter", "run", "load_lifter", "add_parser", "main"]

MODES = ("hipart", "sparse_only", "oracle")


def lifter_kwargs(cfg: LifterConfig) -> dict:
    """Constructor keyword arguments of the lifter for ``cfg.mode`` (17 points for ``sparse_only``)."""
    levels = (17,) if cfg.mode == "sparse_only" else (17, 48, 96)
    kwargs = dict(level_points=levels, num_joints=17, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads,
                  dropout=cfg.dropout)
    if cfg.mode == "hipart" and cfg.confidence:
        kwargs["confidence"] = True
    return kwargs


def snap_of(prior: HierarchicalARPrior, detail: float | None, imputer=None) -> tuple | None:
    """The ``snap`` argument of `recipes.hipart.centring.generate_centred` for ``prior``: its level regressors,
    ``detail``, its learned level map (``None`` when its export has none) and ``imputer`` (the guess of hidden
    joints, `recipes.hipart.imputation.JointImputer`; ``None``: the prior's), or ``None`` when ``detail`` is ``None``
    (no snapping).

    Raises:
        ValueError: when snapping is asked of a prior whose export has no level regressors.
    """
    if detail is None:
        return None
    if not all(hasattr(prior, f"{k}_regressor") for k in ("joint", "dense", "fine")):
        raise ValueError("snap_levels needs a prior exported with its level regressors (extra['level_regressors']); "
                         "retrain the prior with this version of `skeletok hipart train-prior`, or set "
                         "snap_levels=false")
    return prior.dense_regressor, prior.fine_regressor, float(detail), getattr(prior, "level_densifier", None), imputer


@torch.no_grad()
def generate_levels(prior: HierarchicalARPrior, tokenizer: HierarchicalPoseTokenizer, sparse_2d: torch.Tensor,
                    visible: torch.Tensor, *, return_confidence: bool = False,
                    snap: float | None = None, imputer=None) -> tuple[torch.Tensor, ...]:
    """HiPART's densification: argmax tokens from the prior, decoded by the tokenizer, in pelvis-centred
    coordinates (`recipes.hipart.centring`) shifted back to the input's frame.

    Args:
        prior: the frozen stage-2 model.
        tokenizer: the frozen stage-1 model.
        sparse_2d: ``(b, 17, 2)`` normalised sparse pose.
        visible: ``(b, 17)`` bool.
        return_confidence: also return the points' confidence (`recipes.hipart.centring.point_confidence`).
        snap: ``None``, or the detail weight of `recipes.hipart.centring.snap_levels` (levels rebuilt from the
            observed joints with the prior's level regressors).
        imputer: with ``snap``, the guess of hidden joints in place of the prior's (`snap_of`).

    Returns:
        ``dense (b, 48, 2)`` and ``fine (b, 96, 2)`` generated poses, normalised coordinates; with
        ``return_confidence`` also ``dense_conf (b, 48)`` and ``fine_conf (b, 96)``.
    """
    out = generate_centred(prior, tokenizer, sparse_2d, visible, regressor=getattr(prior, "joint_regressor", None),
                           return_confidence=return_confidence, snap=snap_of(prior, snap, imputer))
    return (out[0], out[1], *out[4]) if return_confidence else (out[0], out[1])


@torch.no_grad()
def mapped_levels(prior: HierarchicalARPrior, sparse_2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What `generate_levels` with ``snap=0`` gives for fully seen poses, without running the prior: the prior's
    level map (`recipes.hipart.centring.map_levels`) of the ``(b, 17, 2)`` joints, ``dense (b, 48, 2)`` and
    ``fine (b, 96, 2)``."""
    dense_map, fine_map, _, densifier, _ = snap_of(prior, 0.0)
    levels = map_levels(sparse_2d, dense_regressor=dense_map, fine_regressor=fine_map, densifier=densifier)
    return levels[:, :dense_map.shape[0] // 2], levels[:, dense_map.shape[0] // 2:]


def lifter_inputs(mode: str, batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """The lifter's ``(levels, visibility)`` for ``mode`` from a batch.

    ``hipart`` reads the generated ``dense_hat``/``fine_hat`` (fully visible), ``oracle`` the ground-truth
    ``dense_2d``/``fine_2d`` with ``dense_visible``/``fine_visible``; the sparse level carries ``sparse_visible``.
    (A confidence-reading lifter also gets ``[None, dense_conf, fine_conf]``, see `_step`.)
    """
    if mode == "sparse_only":
        return [batch["sparse_2d"]], [batch["sparse_visible"]]
    if mode == "hipart":
        return [batch["sparse_2d"], batch["dense_hat"], batch["fine_hat"]], [batch["sparse_visible"], None, None]
    return ([batch["sparse_2d"], batch["dense_2d"], batch["fine_2d"]],
            [batch["sparse_visible"], batch["dense_visible"], batch["fine_visible"]])


def training_imputer(train_set) -> JointImputer:
    """The ``guess=gaussian`` imputer of a training set: `recipes.hipart.imputation.fit_joint_imputer` on up to
    50,000 of its clean poses (`recipes.hipart.train_prior.clean_poses`)."""
    return fit_joint_imputer(clean_poses(train_set, max_samples=50_000)[0])


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint Euclidean error of ``(b, j, 3)`` poses, in the unit of the inputs (metres here)."""
    return (pred - target).norm(dim=-1).mean()


def _step(mode: str, generator: tuple[HierarchicalARPrior, HierarchicalPoseTokenizer] | None,
          level_dropout: float = 0.0, confidence: bool = False, aux_3d: float = 0.0, snap: float | None = None,
          gate: tuple[torch.Tensor, torch.Tensor] | None = None, min_visible: int = 0, guess_min_logp: float = 0.0,
          partial_dropout: float = 0.0, imputer=None):
    guesses = gate_reads_scores(gate, guess_min_logp)

    def step(net: torch.nn.Module, batch: dict):
        if generator is not None:
            batch = dict(batch)
            out = generate_levels(*generator, batch["sparse_2d"], batch["sparse_visible"],
                                  return_confidence=confidence or guesses, snap=snap, imputer=imputer)
            batch.update(zip(("dense_hat", "fine_hat", "dense_conf", "fine_conf"), out))
        levels, visibility = lifter_inputs(mode, batch)
        if mode == "hipart":
            scores = (batch["dense_conf"], batch["fine_conf"]) if guesses else None
            visibility = lifted_visibility(levels, visibility, gate, scores, guess_min_logp, min_visible)
            visibility = drop_levels(levels, visibility, level_dropout, net.training)
            visibility = drop_levels(levels, visibility, partial_dropout, net.training, partial=True)
        scores = {"confidence": [None, batch["dense_conf"], batch["fine_conf"]]} if confidence else {}
        if aux_3d <= 0 or mode == "sparse_only":
            loss = mpjpe_loss(net(levels, visibility, **scores).float(), batch["sparse_3d"])
            return loss, {"mpjpe_mm": loss.detach() * 1000.0}
        joints, points = net(levels, visibility, **scores, return_points=True)
        mpjpe = mpjpe_loss(joints.float(), batch["sparse_3d"])
        level_error = mpjpe_loss(points[:, 17:].float(), torch.cat((batch["dense_3d"], batch["fine_3d"]), dim=1))
        return mpjpe + aux_3d * level_error, {"mpjpe_mm": mpjpe.detach() * 1000.0,
                                              "levels_mm": level_error.detach() * 1000.0}

    return step


def token_rows(visible: torch.Tensor, *, snap: float | None, scored: bool, min_visible: int,
               imputed: bool = False) -> torch.Tensor:
    """``(b,)`` bool: the samples whose lifted levels depend on the prior's tokens. Not those seeing fewer than
    ``min_visible`` joints (their levels are hidden, `few_joints_hidden`), nor, when the levels are snapped with
    no detail (``snap == 0``) and no scores are read (``scored`` False), the fully seen ones (their levels are
    the level map of the observed joints, `recipes.hipart.centring.snap_levels`), nor then any sample when the
    hidden joints are guessed by an imputer (``imputed``) instead of the prior."""
    need = visible.sum(-1) >= min_visible
    if snap == 0 and not scored:
        return torch.zeros_like(need) if imputed else need & ~visible.all(-1)
    return need


@torch.no_grad()
def _precompute(dataset, priors: list[HierarchicalARPrior], tokenizer, device,
                prior_of_item: torch.Tensor | None = None, confidence: bool = False,
                snap: float | None = None, epoch: int = 0, min_visible: int = 0, imputer=None) -> TensorItems:
    """Generate the levels (and with ``confidence`` their scores) of every training item once, from epoch
    ``epoch``'s occlusion draw. Item ``i`` is densified by ``priors[prior_of_item[i]]`` (``priors[0]`` when
    ``prior_of_item`` is None). Only the `token_rows` run the prior: the other samples whose levels the lifter reads
    get the level map of their joints (the hidden ones guessed by ``imputer``) without tokens, those seeing fewer
    than ``min_visible`` joints zeros (the lifter never reads them)."""
    keep = ("sparse_2d", "sparse_visible", "sparse_3d") + (("dense_3d", "fine_3d") if getattr(dataset, "levels_3d", False) else ())
    made = ("dense_hat", "fine_hat", "dense_conf", "fine_conf") if confidence else ("dense_hat", "fine_hat")
    columns: dict[str, list[torch.Tensor]] = {k: [] for k in (*keep, *made)}
    dataset.set_epoch(epoch)
    start = 0
    for batch in ordered_batches(dataset, 512):
        b = batch["sparse_2d"].shape[0]
        which = torch.zeros(b, dtype=torch.long) if prior_of_item is None else prior_of_item[start:start + b]
        start += b
        outs = [torch.zeros(b, 48, 2), torch.zeros(b, 96, 2), torch.zeros(b, 48), torch.zeros(b, 96)][:len(made)]
        visible = batch["sparse_visible"]
        need = token_rows(visible, snap=snap, scored=confidence, min_visible=min_visible, imputed=imputer is not None)
        mapped = ~need & (visible.sum(-1) >= min_visible)  # fully seen, or guessed by the imputer
        joints = batch["sparse_2d"].to(device)
        joints = joints if imputer is None else imputer(joints, visible.to(device))
        for k in which.unique().tolist():
            sel = (which == k) & need
            if sel.any():
                got = generate_levels(priors[k], tokenizer, batch["sparse_2d"][sel].to(device),
                                      visible[sel].to(device), return_confidence=confidence, snap=snap,
                                      imputer=imputer)
                for out, value in zip(outs, got):
                    out[sel] = value.cpu()
            sel = (which == k) & mapped
            if sel.any():
                for out, value in zip(outs, mapped_levels(priors[k], joints[sel.to(device)])):
                    out[sel] = value.cpu()
        for key in keep:
            columns[key].append(batch[key])
        for key, out in zip(made, outs):
            columns[key].append(out)
    return TensorItems(**{k: torch.cat(v) for k, v in columns.items()})


def _precomputed(cfg: LifterConfig, dataset, priors, tokenizer, device, prior_of_item, snap, imputer=None) -> Dataset:
    """The training set with its generated levels: one occlusion draw for every epoch (``generated=once``) or
    each epoch's own draw (``generated=epoch``, as the sparse-only and oracle lifters see)."""
    draws = 1 if cfg.generated == "once" else cfg.epochs
    scored = cfg.confidence or gate_reads_scores(cfg.gate_levels, cfg.guess_min_logp)
    made = [_precompute(dataset, priors, tokenizer, device, prior_of_item, scored, snap, epoch=e,
                        min_visible=cfg.level_min_visible, imputer=imputer) for e in range(draws)]
    return made[0] if draws == 1 else EpochDraws(made)


def warm_start(model: HierarchicalLifter, source: HierarchicalLifter) -> HierarchicalLifter:
    """Copy ``source``'s weights into ``model`` where they match: every parameter of the same shape, and for the
    per-point positions and per-level embeddings the rows of ``source``'s levels (the first levels of ``model``).

    Raises:
        ValueError: when the two lifters differ in width or readout, so nothing but the level rows could match.
    """
    own, theirs = model.state_dict(), source.state_dict()
    if own["point_embed.weight"].shape != theirs["point_embed.weight"].shape or set(theirs) - set(own):
        raise ValueError("warm_start: the source lifter must have the same width, depth and readout as the model")
    for key, value in theirs.items():
        if own[key].shape == value.shape:
            own[key] = value
        elif key in ("pos_embed", "level_embed") and own[key].shape[1:] == value.shape[1:]:
            own[key][: value.shape[0]] = value
        else:
            raise ValueError(f"warm_start: parameter {key!r} has shape {tuple(value.shape)} in the source, "
                             f"{tuple(own[key].shape)} in the model")
    model.load_state_dict(own)
    return model


# What a sparse-only lifter never reads: a kept warm start serves lifters that differ in these only.
LEVEL_FIELDS = frozenset({"tokenizer", "prior", "generated", "level_dropout", "partial_level_dropout", "oof_folds",
                          "confidence", "aux_3d", "snap_levels", "snap_detail", "guess", "gate_levels",
                          "guess_min_logp", "level_min_visible"})


def warm_lifter(cfg: LifterConfig, *, resume: bool = True, info: DistInfo | None = None) -> Path:
    """``run_dir/lifter_sparse_only_warm.pt``: the shared sparse-only start of ``warm_epochs`` epochs, trained here
    if missing (all ``warm_epochs``, whatever ``max_steps`` says, so a run stopped early and resumed starts from
    the same lifter as an uninterrupted one). It always keeps its exported file and continues a killed run, so
    ``resume`` (a stage's keyword, as in `run`) changes nothing.

    Raises:
        ValueError: the kept (or killed) warm start was trained with other settings than ``cfg`` asks for, in a
            field a sparse-only lifter reads (all but `LEVEL_FIELDS` and `recipes.hipart.loop.RESUMABLE`).
    """
    path, folder = Path(cfg.run_dir) / "lifter_sparse_only_warm.pt", Path(cfg.run_dir) / "lifter_sparse_only_warm"
    warm = dataclasses.replace(cfg, mode="sparse_only", tag="warm", epochs=cfg.warm_epochs, warm_epochs=0,
                               oof_folds=0, max_steps=0)
    if (folder / "config.json").is_file():
        saved = json.loads((folder / "config.json").read_text())["config"]
        diff = config_diff(saved, warm, LEVEL_FIELDS)
        if diff:
            raise ValueError(f"the warm start {folder} was trained with other settings ({diff}); delete it and "
                             f"{path} to train it again with these")
        # the fields it never reads as they were, so that a killed warm run continues whatever they are now
        warm = dataclasses.replace(warm, **{k: saved[k] for k in LEVEL_FIELDS if k in saved})
    if not path.is_file():  # whole epochs always (``max_steps`` is the caller's), resuming a killed warm run
        run(warm, resume=(folder / "checkpoint.pt").is_file(), info=info or init_distributed(cfg.device))
    return path


def run(cfg: LifterConfig, *, resume: bool = False, info: DistInfo | None = None) -> Path:
    """Train the lifter for ``cfg.mode`` and export ``run_dir/lifter_<mode>.pt``.

    Args:
        cfg: stage-3 config (`recipes.hipart.presets.get_preset("lifter", ...)`).
        resume: continue from ``run_dir/lifter_<mode>/checkpoint.pt``.
        info: the process's `DistInfo` (default: `init_distributed(cfg.device)`).

    Returns:
        The exported model path.

    Raises:
        FileNotFoundError: in ``hipart`` mode, when the tokenizer or prior file does not exist.
    """
    configure_threads(cfg)
    info = info or init_distributed(cfg.device)
    name = f"lifter_{cfg.mode}" + (f"_{cfg.tag}" if cfg.tag else "")
    data = resolve_data(cfg, info)
    if cfg.mode == "oracle":
        require_levels(data, "the oracle lifter")
    train_set = train_set_of(cfg, data, occlusion=occlusion_of(cfg))
    extra = {"data_file": str(data), "mode": cfg.mode}
    generator = None
    snap = cfg.snap_detail if cfg.mode == "hipart" and cfg.snap_levels else None
    gate = imputer = None
    if cfg.mode == "hipart":
        run_dir = Path(cfg.run_dir)
        tok_path = Path(cfg.tokenizer) if cfg.tokenizer else run_dir / "tokenizer.pt"
        prior_path = Path(cfg.prior) if cfg.prior else run_dir / "prior.pt"
        tokenizer = load_tokenizer(tok_path).to(info.device)
        prior = load_prior(prior_path).to(info.device)
        extra.update(tokenizer_file=str(tok_path), prior_file=str(prior_path))
        if cfg.level_min_visible:
            extra.update(level_min_visible=int(cfg.level_min_visible))
        if cfg.gate_levels:
            gate = part_ids_of(tokenizer)  # refuses a tokenizer without parts before any training
            extra.update(gate_levels=True, guess_min_logp=float(cfg.guess_min_logp))
        if snap is not None:
            snap_of(prior, snap)  # refuse a prior without level regressors before any training
            extra.update(snap_levels=True, snap_detail=float(snap))
            if cfg.guess == "gaussian":  # hidden joints guessed by a Gaussian of the clean training poses
                imputer = training_imputer(train_set).to(info.device)
                extra.update(guess="gaussian", joint_imputer=imputer.export())
        if cfg.oof_folds:
            if cfg.generated == "online":
                raise ValueError("oof_folds needs generated=once or generated=epoch (out-of-fold levels are "
                                 "precomputed per sample)")
            paths = [run_dir / f"prior_fold{k}.pt" for k in range(cfg.oof_folds)]
            for k, path in enumerate(paths):
                if not path.is_file():
                    raise FileNotFoundError(f"{path} not found; train it with `skeletok hipart train-prior "
                                            f"folds={cfg.oof_folds} fold={k} run_dir={cfg.run_dir}`")
            priors = [load_prior(path).to(info.device) for path in paths]
            fold_of = torch.from_numpy(sequence_folds(data, cfg.oof_folds, seed=cfg.seed))
            prior_of_item = fold_of[train_set.item_sequence].clamp_min(0)
            train_set = _precomputed(cfg, train_set, priors, tokenizer, info.device, prior_of_item, snap, imputer)
            extra.update(oof_priors=[str(p) for p in paths])
        elif cfg.generated in ("once", "epoch"):
            train_set = _precomputed(cfg, train_set, [prior], tokenizer, info.device, None, snap, imputer)
        else:
            generator = (prior, tokenizer)
    kwargs = lifter_kwargs(cfg)
    seed_all(cfg.seed)
    model = HierarchicalLifter(**kwargs)
    if cfg.warm_epochs:
        start = warm_lifter(cfg, info=info)
        warm_start(model, load_lifter(start)[0])
        extra.update(warm_start=str(start))
    step = _step(cfg.mode, generator, cfg.level_dropout, model.point_confidence, cfg.aux_3d, snap, gate,
                 cfg.level_min_visible, cfg.guess_min_logp, cfg.partial_level_dropout, imputer)
    model = train(cfg, name=name, model=model, train_set=train_set, step=step, info=info,
                  resume=resume, extra_config=extra)
    return export_stage(cfg, name, model, kwargs=kwargs, extra=extra, info=info)


def load_lifter(path: str | Path, *, map_location="cpu") -> tuple[HierarchicalLifter, str]:
    """The exported lifter at ``path`` (eval mode, frozen) and its mode (``hipart``/``sparse_only``/``oracle``)."""
    model, payload = load_exported(path, HierarchicalLifter, map_location=map_location)
    return model.requires_grad_(False), str(payload["extra"]["mode"])


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart train-lifter``."""
    add_stage_parser(subparsers, "train-lifter", "lifter", run,
                     help="stage 3: train the lifter (mode=hipart|sparse_only|oracle)")


def main(argv: list[str] | None = None) -> int:
    return stage_main("lifter", run, "HiPART stage 3: train the lifter", argv)


if __name__ == "__main__":
    raise SystemExit(main())
