"""Typed configurations and their overrides for HiPART's three training stages.

One dataclass per stage (`TokenizerConfig`, `PriorConfig`, `LifterConfig`), all sharing the run fields of
`RunConfig` (data, run directory, seed, device, optimisation schedule, logging). The named presets over them
live in `recipes.hipart.presets`:

    cfg = get_preset("prior", "demo", ["batch_size=32", "max_steps=100"])

`key=value` overrides are parsed against the dataclass field types; an unknown key or a bad value raises a
`ValueError` that lists the valid keys. Every run writes its resolved configuration as JSON into its run
directory (`save_config`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["RunConfig", "TokenizerConfig", "PriorConfig", "LifterConfig", "STAGES", "check_level_min_visible",
           "apply_overrides", "save_config", "config_from_dict", "stage_of"]

Schedule = Literal["cosine", "constant", "step"]
Optimizer = Literal["adamw", "adam"]


@dataclass
class RunConfig:
    """Fields shared by every stage: data, run directory, optimisation and logging.

    Attributes:
        data: dataset `.npz` (docs/concepts.md format); empty = the default dataset (`build_default_dataset`).
        run_dir: directory shared by the stages of one run; final weights go to ``run_dir/<name>.pt``,
            the resolved config, ``metrics.jsonl`` and the resume checkpoint to ``run_dir/<name>/``.
        seed: seeds torch, numpy, python and the data order / occlusion streams.
        device: ``auto`` (cuda if available, else cpu), ``cpu`` or ``cuda``.
        epochs: training length; also the horizon of the learning-rate schedule.
        max_steps: stop after this many optimiser steps (0 = run all epochs). The schedule keeps the
            ``epochs`` horizon, so a run stopped early and resumed matches an uninterrupted one.
        batch_size: global batch size (split evenly over DDP ranks).
        optimizer: ``adamw`` or ``adam`` (Adam adds ``weight_decay`` as L2 to the gradient).
        lr: peak learning rate.
        weight_decay: decoupled (AdamW) or L2 (Adam) weight decay.
        warmup_steps: linear warm-up iterations from 0 to ``lr``.
        schedule: ``cosine`` (to 0 over the epochs), ``constant``, or ``step`` (x ``gamma`` every ``step_epochs``).
        step_epochs, gamma: period (epochs) and factor of the ``step`` schedule.
        grad_clip: max gradient norm (0 = off).
        num_workers: DataLoader workers.
        log_every: steps between ``metrics.jsonl`` records.
        ckpt_every: steps between resume checkpoints (one is also written at each epoch end and at the end).
        bf16: bf16 autocast (CUDA only; ignored on CPU).
        progress: show tqdm progress bars (rank 0 only).
        threads: torch intra-op CPU threads (0 = torch's default). On a busy shared CPU, 1 is often several
            times faster than the default, which spins threads against the other processes.
        random_views: fraction of the training items filmed by a random virtual camera of their own, aimed at the
            subject (Human3.6M-like rigs, `skeletok.data.HierarchicalPoseDataset`); val and test keep the file's.
    """

    data: str = ""
    run_dir: str = "runs/hipart"
    seed: int = 0
    device: str = "auto"
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 64
    optimizer: Optimizer = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Schedule = "constant"
    step_epochs: int = 4
    gamma: float = 0.96
    grad_clip: float = 0.0
    num_workers: int = 0
    log_every: int = 50
    ckpt_every: int = 500
    bf16: bool = True
    progress: bool = True
    threads: int = 0
    random_views: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every", "ckpt_every", "step_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps", "num_workers", "threads", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must lie in (0, 1], got {self.gamma}")
        _check_fractions(self, "random_views")
        det_min_score = getattr(self, "det_min_score", 0.0)  # stages with detections as input
        if not (math.isfinite(det_min_score) and det_min_score >= 0):
            raise ValueError(f"det_min_score must be a finite score >= 0, got {det_min_score}")


def check_level_min_visible(value: int) -> int:
    """``value`` if it is a joint count (an int in [0, 17], `LifterConfig.level_min_visible`), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 17:
        raise ValueError(f"level_min_visible must be a joint count in [0, 17], got {value!r}")
    return value


def _check_fractions(cfg: RunConfig, *names: str) -> None:
    for name in names:
        if not 0 <= getattr(cfg, name) <= 1:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {getattr(cfg, name)}")


def _check_folds(name: str, folds: int) -> None:
    if folds < 0 or folds == 1:
        raise ValueError(f"{name} must be 0 (off) or >= 2, got {folds}")


@dataclass
class TokenizerConfig(RunConfig):
    """Stage 1, MSST: `HierarchicalPoseTokenizer` trained on fine and dense 2D poses.

    Attributes:
        dim, depth: Mixer width D1 and blocks L1.
        code_dim: codebook entry width (not in the paper; `HierarchicalPoseTokenizer`'s default, 128).
        codebook_size_sparse, codebook_size_dense: entries of C_s and C_d (not in the paper; the tokenizer's
            documented defaults, 256 and 512).
        decay: EMA decay of the codebooks.
        projection: ``part`` (part-structured pooling, default) or ``dense`` (PCT's learned projection).
        mask_rate: fraction of fine points replaced by the learned "invisible" embedding in training.
        beta, lambda_local, lambda_global, tau: loss weights and temperature (Eq. 3, 5, 6).
        local_negatives: negatives of the local alignment: ``all`` (other parts and other poses, Eq. 3 as
            written) or ``parts`` (other parts of the same pose only; poses that share a code are then not
            counted as false negatives, which otherwise puts a floor of about log(batch) under the loss and
            drowns the reconstruction terms in short runs).
        dropout: dropout inside the Mixer blocks.
        use_actions: train the global (action) alignment term on the dataset's action labels.
    """

    dim: int = 128
    depth: int = 4
    code_dim: int = 128
    codebook_size_sparse: int = 256
    codebook_size_dense: int = 512
    projection: Literal["part", "dense"] = "part"
    mask_rate: float = 0.2
    beta: float = 0.25
    lambda_local: float = 1.0
    lambda_global: float = 0.3
    tau: float = 0.07
    local_negatives: Literal["all", "parts"] = "all"
    dropout: float = 0.0
    decay: float = 0.99
    use_actions: bool = True


# Default of det_min_score: 0 hides only the detector's misses. The paper feeds CPN detections, which carry no
# scores, as they are; a low-scored keypoint still says roughly where the joint is, and the occlusion
# augmentation already trains the models on hidden joints, so dropping it is a choice for the user of a scored
# detector (detectron2's scores are not probabilities in [0, 1], so no single cut-off suits every detector).
DET_MIN_SCORE = 0.0


@dataclass
class PriorConfig(RunConfig):
    """Stage 2, HiARM: `HierarchicalARPrior` over the frozen tokenizer's tokens.

    Attributes:
        tokenizer: the stage-1 weights; empty = ``run_dir/tokenizer.pt``.
        tokens: ``precompute`` (encode every training pose once before training: the tokenizer is frozen
            and its input, the clean fine pose, does not change between epochs, so this is exact and
            faster) or ``online`` (encode each batch).
        dim, depth, heads, lsab_depth, dropout, lambda_d: prior width D2, GCSAB blocks L2, heads, LSAB blocks,
            dropout and the dense cross-entropy weight.
        mask_ratio, crop_ratio, noise_px, occlusion_prob: occlusion augmentation of the sparse condition
            (`skeletok.data.Occlusion`; strengths are our choice, the paper trains on CPN detections).
        inputs: the sparse condition: ``ground_truth`` (the projected joints) or ``detections`` (the file's 2D
            detections, ``det_sparse``, e.g. Human3.6M's CPN; needs ``random_views=0``); occlusion augmentation
            applies to either. The targets (tokens of the ground-truth fine pose) stay ground truth.
        det_min_score: with ``inputs=detections``, detected keypoints scoring below this are hidden from the
            condition (``sparse_visible`` False), as missed ones always are; default 0:
            the misses only (`DET_MIN_SCORE`).
        folds, fold: with ``folds = K > 1``, train on the training takes outside fold ``fold`` only (takes are
            dealt into K folds by near-duplicate group, `skeletok.data.sets.splits.take_folds`) and export
            ``run_dir/prior_fold<fold>.pt``: the out-of-fold priors that generate the hipart lifter's training
            levels (`LifterConfig.oof_folds`). ``folds = 0`` trains the prior of the run on every training take.
        densifier_steps, densifier_lr: > 0 also fits a learned level map on the prior's clean training poses for
            that many batches at that peak learning rate (`recipes.hipart.densifier.fit_densifier`, exported with
            the prior), which snapping then uses in place of the affine level regressors; 0 = the affine map only.
    """

    tokenizer: str = ""
    tokens: Literal["precompute", "online"] = "precompute"
    folds: int = 0
    fold: int = 0
    densifier_steps: int = 0
    densifier_lr: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_folds("folds", self.folds)
        if self.folds and not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must lie in [0, folds={self.folds}), got {self.fold}")
        if self.densifier_steps < 0 or not self.densifier_lr > 0:
            raise ValueError(f"densifier_steps must be >= 0 (0 = no learned level map) and densifier_lr > 0, got "
                             f"{self.densifier_steps} and {self.densifier_lr}")
    dim: int = 128
    depth: int = 12
    heads: int = 8
    lsab_depth: int = 1
    dropout: float = 0.25
    lambda_d: float = 1.5
    mask_ratio: float = 0.2
    crop_ratio: float = 0.2
    noise_px: float = 2.0
    occlusion_prob: float = 0.5
    inputs: Literal["ground_truth", "detections"] = "ground_truth"
    det_min_score: float = DET_MIN_SCORE


@dataclass
class LifterConfig(RunConfig):
    """Stage 3: `HierarchicalLifter` from 2D levels to root-relative 3D joints (MPJPE loss, metres).

    Attributes:
        mode: ``hipart`` ([sparse, generated dense, generated fine]), ``sparse_only`` (17 points) or
            ``oracle`` (ground-truth dense and fine).
        tokenizer, prior: frozen stage-1/2 weights for ``hipart``; empty = ``run_dir/{tokenizer,prior}.pt``.
        generated: ``once`` (generate the dense/fine levels for the whole training set once, with argmax,
            from one occlusion draw, and train on that fixed set: the practical choice on CPU), ``epoch``
            (precompute them for each epoch's own occlusion draw, as the other lifters see: ``epochs`` times the
            generation) or ``online`` (generate for every batch from that epoch's occluded input).
        dim, depth, heads, dropout: spatial transformer (depth/heads are our choice; the paper gives none).
        mask_ratio, crop_ratio, noise_px, occlusion_prob: occlusion augmentation of the sparse input.
        inputs: the sparse input (and the prior's condition in ``hipart`` mode): ``ground_truth`` (the projected
            joints) or ``detections`` (the file's 2D detections, ``det_sparse``, e.g. Human3.6M's CPN; needs
            ``random_views=0``). The 3D targets and the oracle's dense/fine levels stay ground truth.
        det_min_score: with ``inputs=detections``, detected keypoints scoring below this are hidden from the
            lifters and the prior (``sparse_visible`` False), as missed ones always are; default 0 (`DET_MIN_SCORE`).
        level_dropout: ``hipart`` mode only: fraction of training samples whose generated levels are hidden
            (learned missing embedding), so the lifter does not trust generated points blindly; 0 (the paper).
        partial_level_dropout: ``hipart`` mode only: the same among the partly seen training samples only (more
            training of the lifter's no-level mode, no fully seen sample's levels hidden). 0 (default): none.
        oof_folds: ``hipart`` mode only: with K > 1, the training levels of a sample are generated by the
            out-of-fold prior ``run_dir/prior_fold<k>.pt`` trained without the sample's take (train them with
            ``train-prior folds=K fold=k``), so the lifter learns on levels as wrong as the prior's levels for
            poses it has never seen; 0 generates them with the run's prior (the paper).
        warm_epochs: with E > 0, every mode starts from one shared sparse-only lifter trained for E epochs
            (``run_dir/lifter_sparse_only_warm.pt``, trained by the first lifter run that needs it), so the hipart
            and oracle lifters learn what the levels add, and the sparse-only baseline continues from the same
            start for the same ``epochs`` (equal training). 0 trains every lifter from scratch (the paper).
        confidence: ``hipart`` mode only: the lifter also reads how sure the prior was of every generated point
            (the mean log-probability of its part's tokens, `recipes.hipart.centring.point_confidence`).
        aux_3d: ``hipart`` and ``oracle`` modes: weight of an auxiliary loss, the mean 3D error (metres,
            root-relative camera frame) of the dense and fine points regressed from their own tokens by the same
            head as the joints: ground-truth geometry the 17 joints do not carry. 0 (default) trains on the joints
            only (the paper).
        snap_levels: ``hipart`` mode only: rebuild the generated levels from the observed joints (and the prior's
            own joints where hidden) with the prior export's level regressors before lifting, in training and at
            inference (`recipes.hipart.centring.snap_levels`): decoded tokens miss even the visible joints by the
            tokenizer's quantisation error. False lifts the decoded levels as they are (the paper).
        snap_detail: with ``snap_levels``, weight in ``[0, 1]`` of the generated pose's detail beyond its joints
            (0 = levels from the joints alone, 1 = the whole generated pose moved onto the observed joints).
        guess: with ``snap_levels``, who guesses the hidden joints the level map reads: ``prior`` (default: the
            joints of the generated pose) or ``gaussian`` (their conditional mean given the seen joints under a
            Gaussian of the clean training poses, `recipes.hipart.imputation`; exported with the lifter).
        gate_levels: ``hipart`` mode only: the generated points of a part with a hidden joint are hidden from the
            lifter (`recipes.hipart.centring.visible_parts`), in training and at inference, so it lifts guessed
            body parts from the sparse pose alone. False shows every generated point (the paper).
        guess_min_logp: with ``gate_levels``, also show a guessed part (one with a hidden joint) whose tokens' mean
            log-probability (`recipes.hipart.centring.point_confidence`) is above this; 0 (default): none.
        level_min_visible: ``hipart`` mode only: a sample seeing fewer of its 17 joints is lifted with its levels
            hidden (training and inference; `level_gates.few_joints_hidden`). 0 (default) always shows them.
        tag: suffix of the exported name (``lifter_<mode>_<tag>.pt``); empty for ``lifter_<mode>.pt``.
    """

    mode: Literal["hipart", "sparse_only", "oracle"] = "hipart"
    level_dropout: float = 0.0
    partial_level_dropout: float = 0.0
    oof_folds: int = 0
    warm_epochs: int = 0
    confidence: bool = False
    aux_3d: float = 0.0
    snap_levels: bool = False
    snap_detail: float = 0.0
    guess: Literal["prior", "gaussian"] = "prior"
    gate_levels: bool = False
    guess_min_logp: float = 0.0
    level_min_visible: int = 0
    tag: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_folds("oof_folds", self.oof_folds)
        _check_fractions(self, "level_dropout", "partial_level_dropout", "snap_detail")
        if not self.aux_3d >= 0:
            raise ValueError(f"aux_3d must be >= 0, got {self.aux_3d}")
        if self.warm_epochs < 0:
            raise ValueError(f"warm_epochs must be >= 0, got {self.warm_epochs}")
        check_level_min_visible(self.level_min_visible)
        if self.guess == "gaussian" and not self.snap_levels:  # the guesses feed the level map
            raise ValueError("guess=gaussian needs snap_levels=true")
        if not self.guess_min_logp <= 0 or (self.guess_min_logp < 0 and not self.gate_levels):
            raise ValueError(f"guess_min_logp must be a log-probability threshold <= 0, below 0 only with "
                             f"gate_levels=true; got {self.guess_min_logp}, gate_levels={self.gate_levels}")
    tokenizer: str = ""
    prior: str = ""
    generated: Literal["once", "epoch", "online"] = "once"
    dim: int = 128
    depth: int = 4
    heads: int = 8
    dropout: float = 0.0
    mask_ratio: float = 0.2
    crop_ratio: float = 0.2
    noise_px: float = 2.0
    occlusion_prob: float = 0.5
    inputs: Literal["ground_truth", "detections"] = "ground_truth"
    det_min_score: float = DET_MIN_SCORE


STAGES: dict[str, type[RunConfig]] = {"tokenizer": TokenizerConfig, "prior": PriorConfig, "lifter": LifterConfig}
# --- overrides -------------------------------------------------------------------------------------------


def _parse_value(cls: type, key: str, raw: str, hint) -> object:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise ValueError(f"override {key}={raw!r} for {cls.__name__}: expected one of {list(choices)}")
        return raw
    if hint is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"override {key}={raw!r} for {cls.__name__}: expected a bool (true/false/1/0)")
    if hint in (int, float):
        try:
            return hint(raw)
        except ValueError:
            raise ValueError(f"override {key}={raw!r} for {cls.__name__}: expected {hint.__name__}") from None
    return raw


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Return a copy of ``cfg`` with ``key=value`` strings applied, each parsed against the field's type.

    Raises:
        ValueError: for a malformed item, an unknown key (the message lists the valid keys) or a value that
            does not parse as the field's type (bool, int, float or one of a fixed set of choices).
    """
    cls = type(cfg)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    changes = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value; valid keys for {cls.__name__}: {names}")
        key, raw = (part.strip() for part in item.split("=", 1))
        if key not in hints:
            raise ValueError(f"unknown override key {key!r} for {cls.__name__}; valid keys: {names}")
        changes[key] = _parse_value(cls, key, raw, hints[key])
    return dataclasses.replace(cfg, **changes)


def config_from_dict(stage: str, values: dict) -> RunConfig:
    """Rebuild a stage config from a plain dict (as stored in checkpoints and ``config.json``).

    Raises:
        ValueError: unknown stage or keys that are not fields of the stage's config.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
    cls = STAGES[stage]
    names = {f.name for f in dataclasses.fields(cls)}
    if unknown := sorted(set(values) - names):
        raise ValueError(f"config for stage {stage!r} has unknown keys {unknown}; valid keys: {sorted(names)}")
    return cls(**values)


def save_config(cfg: RunConfig, path: str | Path, **extra) -> Path:
    """Write the resolved config (plus ``extra`` plain values) as indented JSON to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"stage": stage_of(cfg), "config": dataclasses.asdict(cfg), **extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def stage_of(cfg: RunConfig) -> str:
    """The stage name (``tokenizer``, ``prior`` or ``lifter``) of a config object."""
    for stage, cls in STAGES.items():
        if type(cfg) is cls:
            return stage
    raise ValueError(f"cfg must be one of {[c.__name__ for c in STAGES.values()]}, got {type(cfg).__name__}")

