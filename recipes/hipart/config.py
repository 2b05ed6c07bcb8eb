"""Typed configurations and named presets for HiPART's three training stages.

One dataclass per stage (`TokenizerConfig`, `PriorConfig`, `LifterConfig`), all sharing the run fields of
`RunConfig` (data, run directory, seed, device, optimisation schedule, logging). Presets are small functions
over one builder per stage (timm-style) and live in the `PRESETS` registry:

    cfg = get_preset("prior", "demo", ["batch_size=32", "max_steps=100"])

`key=value` overrides are parsed against the dataclass field types; an unknown key or a bad value raises a
`ValueError` that lists the valid keys. Every run writes its resolved configuration as JSON into its run
directory (`save_config`).

The ``h36m`` presets are the paper's settings (supplementary Section C). Values the paper does not give
(codebook sizes, code width, lifter depth, occlusion augmentation strength) are our choices and say so below.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

__all__ = [
    "RunConfig",
    "TokenizerConfig",
    "PriorConfig",
    "LifterConfig",
    "PRESETS",
    "STAGES",
    "get_preset",
    "apply_overrides",
    "save_config",
    "config_from_dict",
    "stage_of",
]

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
        schedule: ``cosine`` (to 0 over the epochs), ``constant``, or ``step`` (x ``gamma`` every
            ``step_epochs`` epochs).
        step_epochs: period of the ``step`` schedule, epochs.
        gamma: factor of the ``step`` schedule.
        grad_clip: max gradient norm (0 = off).
        num_workers: DataLoader workers.
        log_every: steps between ``metrics.jsonl`` records.
        ckpt_every: steps between resume checkpoints (one is also written at each epoch end and at the end).
        bf16: bf16 autocast (CUDA only; ignored on CPU).
        progress: show tqdm progress bars (rank 0 only).
        threads: torch intra-op CPU threads (0 = torch's default). On a busy shared CPU, 1 is often several
            times faster than the default, which spins threads against the other processes.
        random_views: fraction of the training items filmed by a random virtual camera of their own
            (Human3.6M-like heights, distances and focal lengths, kept on the subject;
            `skeletok.data.HierarchicalPoseDataset`); validation and test keep the file's cameras.
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
        if not 0 <= self.random_views <= 1:
            raise ValueError(f"random_views must lie in [0, 1], got {self.random_views}")


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
        folds, fold: with ``folds = K > 1``, train on the training takes outside fold ``fold`` only (takes are
            dealt into K folds by near-duplicate group, `skeletok.data.splits.take_folds`) and export
            ``run_dir/prior_fold<fold>.pt``: the out-of-fold priors that generate the hipart lifter's training
            levels (`LifterConfig.oof_folds`). ``folds = 0`` trains the prior of the run on every training take.
    """

    tokenizer: str = ""
    tokens: Literal["precompute", "online"] = "precompute"
    folds: int = 0
    fold: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_folds("folds", self.folds)
        if self.folds and not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must lie in [0, folds={self.folds}), got {self.fold}")
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


@dataclass
class LifterConfig(RunConfig):
    """Stage 3: `HierarchicalLifter` from 2D levels to root-relative 3D joints (MPJPE loss, metres).

    Attributes:
        mode: ``hipart`` ([sparse, generated dense, generated fine]), ``sparse_only`` (17 points) or
            ``oracle`` (ground-truth dense and fine).
        tokenizer, prior: frozen stage-1/2 weights for ``hipart``; empty = ``run_dir/{tokenizer,prior}.pt``.
        generated: ``once`` (generate the dense/fine levels for the whole training set once, with argmax,
            from one occlusion draw, and train on that fixed set: the practical choice on CPU) or ``online``
            (generate for every batch from that epoch's occluded input).
        dim, depth, heads, dropout: spatial transformer (depth/heads are our choice; the paper gives none).
        mask_ratio, crop_ratio, noise_px, occlusion_prob: occlusion augmentation of the sparse input.
        inputs: the sparse input (and the prior's condition in ``hipart`` mode): ``ground_truth`` (the projected
            joints) or ``detections`` (the file's 2D detections, ``det_sparse``, e.g. Human3.6M's CPN; needs
            ``random_views=0``). The 3D targets and the oracle's dense/fine levels stay ground truth.
        level_dropout: ``hipart`` mode only: fraction of training samples whose generated dense and fine
            levels are hidden (learned missing embedding), so the lifter does not trust generated points
            blindly (the prior generates better levels for its own training poses than for unseen ones).
            Not in the paper; 0 keeps the paper's training.
        oof_folds: ``hipart`` mode only: with K > 1, the training levels of a sample are generated by the
            out-of-fold prior ``run_dir/prior_fold<k>.pt`` trained without the sample's take (train them with
            ``train-prior folds=K fold=k``), so the lifter learns on levels as wrong as the prior's levels for
            poses it has never seen; 0 generates them with the run's prior (the paper).
        warm_epochs: with E > 0, every mode starts from one shared sparse-only lifter trained for E epochs
            (``run_dir/lifter_sparse_only_warm.pt``, trained by the first lifter run that needs it): the hipart
            and oracle lifters then begin as the sparse-only lifter and learn what the levels add, instead of
            learning 2D-to-3D lifting and the use of 144 extra points at once in a short run; the sparse-only
            baseline continues from the same start for the same ``epochs``, so all three get equal training.
            0 trains every lifter from scratch (the paper).
        confidence: ``hipart`` mode only: the lifter also reads how sure the prior was of every generated point
            (the mean log-probability of its part's tokens, `recipes.hipart.centring.point_confidence`).
        tag: suffix of the exported name (``lifter_<mode>_<tag>.pt``); empty for ``lifter_<mode>.pt``.
    """

    mode: Literal["hipart", "sparse_only", "oracle"] = "hipart"
    level_dropout: float = 0.0
    oof_folds: int = 0
    warm_epochs: int = 0
    confidence: bool = False
    tag: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_folds("oof_folds", self.oof_folds)
        if self.warm_epochs < 0:
            raise ValueError(f"warm_epochs must be >= 0, got {self.warm_epochs}")
    tokenizer: str = ""
    prior: str = ""
    generated: Literal["once", "online"] = "once"
    dim: int = 128
    depth: int = 4
    heads: int = 8
    dropout: float = 0.0
    mask_ratio: float = 0.2
    crop_ratio: float = 0.2
    noise_px: float = 2.0
    occlusion_prob: float = 0.5
    inputs: Literal["ground_truth", "detections"] = "ground_truth"


STAGES: dict[str, type[RunConfig]] = {"tokenizer": TokenizerConfig, "prior": PriorConfig, "lifter": LifterConfig}
PRESETS: dict[str, dict[str, Callable[[], RunConfig]]] = {stage: {} for stage in STAGES}


def _register(stage: str) -> Callable:
    def wrap(fn: Callable[[], RunConfig]) -> Callable[[], RunConfig]:
        PRESETS[stage][fn.__name__.split("_", 1)[1]] = fn
        return fn

    return wrap


def _build(stage: str, **kwargs) -> RunConfig:
    """The one builder behind every preset: the stage's dataclass with ``kwargs`` over its defaults."""
    return STAGES[stage](**kwargs)


# --- paper settings (supplementary Section C) -------------------------------------------------------------


@_register("tokenizer")
def tokenizer_h36m() -> TokenizerConfig:
    """MSST: AdamW lr 1e-3, wd 0.15, 500 warm-up iterations then cosine, batch 128, 20 epochs, L1=4, D1=128."""
    return _build("tokenizer", epochs=20, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.15,
                  warmup_steps=500, schedule="cosine", dim=128, depth=4, beta=0.25, lambda_local=1.0,
                  lambda_global=0.3, tau=0.07, mask_rate=0.2)


@_register("prior")
def prior_h36m() -> PriorConfig:
    """HiARM: AdamW lr 5e-4, wd 0.03, batch 64, 50 epochs, L2=12, D2=128, lambda_d 1.5, dropout 0.25."""
    return _build("prior", epochs=50, batch_size=64, optimizer="adamw", lr=5e-4, weight_decay=0.03,
                  schedule="constant", dim=128, depth=12, heads=8, dropout=0.25, lambda_d=1.5)


@_register("lifter")
def lifter_h36m() -> LifterConfig:
    """Lifter: Adam lr 1e-3 decayed x0.96 every 4 epochs, 25 epochs, batch 256."""
    return _build("lifter", epochs=25, batch_size=256, optimizer="adam", lr=1e-3, weight_decay=0.0,
                  schedule="step", step_epochs=4, gamma=0.96, dim=128, depth=4, heads=8)


# --- demo: small enough that all three stages train in minutes on two CPU cores --------------------------
#
# Data: the default dataset at 150 evenly spaced frames per take, training takes mirrored and on 2 body shapes
# (8,044 training frames x 4 cameras = 32,176 items an epoch). Every setting below was chosen on the
# validation split (`skeletok hipart demo --eval-split val`) and on leave-one-source-out runs
# (`skeletok hipart cross-source`), never on test; recipes/hipart/README.md has the numbers.

_DEMO_RUN = dict(run_dir="runs/demo", log_every=20, ckpt_every=200, random_views=0.5)
# Occlusion augmentation of the prior and the lifters (all three modes alike): masks and crops up to 0.4, so
# that the crops of the evaluation's sweep (0-0.4) are in the training range.
_DEMO_OCCLUSION = dict(mask_ratio=0.4, crop_ratio=0.4)


@_register("tokenizer")
def tokenizer_demo() -> TokenizerConfig:
    """Small MSST (D1=64, L1=2, small codebooks), the paper's optimiser recipe, 1 epoch of batch 64 (503 steps);
    local alignment against the other parts only (`local_negatives="parts"`, see `TokenizerConfig`); codebook
    EMA decay 0.9, since 0.99 cannot follow the encoder in a run of ~500 steps (39.9 against 19.7 px of fine-pose
    reconstruction on the earlier demo data)."""
    return _build("tokenizer", **_DEMO_RUN, epochs=1, batch_size=64, optimizer="adamw", lr=2e-3,
                  weight_decay=0.15, warmup_steps=40, schedule="cosine", dim=64, depth=2, code_dim=32,
                  codebook_size_sparse=128, codebook_size_dense=256, local_negatives="parts", decay=0.9)


@_register("prior")
def prior_demo() -> PriorConfig:
    """Small HiARM (D2=64, L2=3, dropout 0.1) with the paper's optimiser and batch 64, 3 epochs (1,509 steps),
    cosine; occlusion augmentation up to the range the evaluation sweeps (masks and crops up to 0.4)."""
    return _build("prior", **_DEMO_RUN, epochs=3, batch_size=64, optimizer="adamw", lr=1e-3,
                  weight_decay=0.03, warmup_steps=20, schedule="cosine", dim=64, depth=3, heads=4,
                  dropout=0.1, **_DEMO_OCCLUSION)


@_register("lifter")
def lifter_demo() -> LifterConfig:
    """Small lifter (D=48, 2 blocks) with the paper's Adam step schedule, 2 epochs of batch 64 (1,006 steps), all
    three modes starting from one sparse-only lifter of 2 epochs (``warm_epochs=2``); in ``hipart`` mode the
    training levels come from 2 out-of-fold priors (``oof_folds=2``) and half of the training samples hide their
    generated levels (``level_dropout=0.5``). Chosen on validation (MPJPE mm, sparse only / HiPART / oracle):
    from scratch with out-of-fold levels 105.1 / 130.9 / 97.6, from scratch with the run's prior's levels
    105.1 / 115.7 / 97.6, warm-started with the run's prior's levels 95.2 / 96.6 / 81.6, warm-started with
    out-of-fold levels 95.2 / 95.1 / 81.6 (mask 0.4: 138.9 / 140.0 against 144.1 with the run's prior)."""
    return _build("lifter", **_DEMO_RUN, epochs=2, batch_size=64, optimizer="adam", lr=2e-3,
                  schedule="step", step_epochs=1, gamma=0.65, dim=48, depth=2, heads=4, level_dropout=0.5,
                  oof_folds=2, warm_epochs=2, **_DEMO_OCCLUSION)


# --- full: every frame of the default data; about 2 hours on two CPU cores, minutes on a GPU ---------------
#
# The demo's settings at about 4x the model size and 3-4x the training length, over the full default dataset
# (every frame at 50 fps, training takes mirrored and on 2 body shapes). The run time is an estimate from
# the demo's measured seconds per step, not a measurement (see recipes/hipart/README.md).

_FULL_RUN = dict(run_dir="runs/full", log_every=50, ckpt_every=500, random_views=0.5)


@_register("tokenizer")
def tokenizer_full() -> TokenizerConfig:
    """MSST at D1=96, L1=3, codebooks 256 / 512 x 64, 2 epochs of batch 128 (EMA decay 0.95)."""
    return _build("tokenizer", **_FULL_RUN, epochs=2, batch_size=128, optimizer="adamw", lr=2e-3,
                  weight_decay=0.15, warmup_steps=200, schedule="cosine", dim=96, depth=3, code_dim=64,
                  codebook_size_sparse=256, codebook_size_dense=512, local_negatives="parts", decay=0.95)


@_register("prior")
def prior_full() -> PriorConfig:
    """HiARM at D2=96, L2=6, dropout 0.1, 3 epochs of batch 128."""
    return _build("prior", **_FULL_RUN, epochs=3, batch_size=128, optimizer="adamw", lr=1e-3,
                  weight_decay=0.03, warmup_steps=200, schedule="cosine", dim=96, depth=6, heads=4,
                  dropout=0.1, **_DEMO_OCCLUSION)


@_register("lifter")
def lifter_full() -> LifterConfig:
    """Lifter at D=64, 3 blocks, 3 epochs of batch 128 after a 3-epoch sparse-only start, out-of-fold levels
    (2 folds), level dropout 0.5."""
    return _build("lifter", **_FULL_RUN, epochs=3, batch_size=128, optimizer="adam", lr=2e-3,
                  schedule="step", step_epochs=1, gamma=0.7, dim=64, depth=3, heads=4, level_dropout=0.5,
                  oof_folds=2, warm_epochs=3, **_DEMO_OCCLUSION)


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
            raise ValueError(
                f"override {key}={raw!r} for {cls.__name__}: expected {hint.__name__}"
            ) from None
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
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in hints:
            raise ValueError(f"unknown override key {key!r} for {cls.__name__}; valid keys: {names}")
        changes[key] = _parse_value(cls, key, raw.strip(), hints[key])
    return dataclasses.replace(cfg, **changes)


def get_preset(stage: str, name: str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Build preset ``name`` of ``stage`` (``tokenizer``, ``prior`` or ``lifter``) with overrides applied.

    Raises:
        ValueError: unknown stage or preset (listing the known ones), or a bad override.
    """
    if stage not in PRESETS:
        raise ValueError(f"stage must be one of {list(PRESETS)}, got {stage!r}")
    if name not in PRESETS[stage]:
        raise ValueError(f"preset for stage {stage!r} must be one of {sorted(PRESETS[stage])}, got {name!r}")
    return apply_overrides(PRESETS[stage][name](), overrides)


def config_from_dict(stage: str, values: dict) -> RunConfig:
    """Rebuild a stage config from a plain dict (as stored in checkpoints and ``config.json``).

    Raises:
        ValueError: unknown stage or keys that are not fields of the stage's config.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
    cls = STAGES[stage]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
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

