"""Named presets of HiPART's three training stages: small functions over one builder per stage (timm-style), in
the `PRESETS` registry, so every preset is built and tested by looping over it:

    cfg = get_preset("prior", "demo", ["batch_size=32", "max_steps=100"])

The ``h36m`` presets are the paper's settings (supplementary Section C). Values the paper does not give
(codebook sizes, code width, lifter depth, occlusion augmentation strength) are our choices and say so below.
``demo`` trains all three stages in minutes on two CPU cores; ``full`` uses every frame of the default data.
"""

from __future__ import annotations

from typing import Callable

from .config import STAGES, LifterConfig, PriorConfig, RunConfig, TokenizerConfig, apply_overrides

__all__ = ["PRESETS", "get_preset"]

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
    cosine; occlusion augmentation up to the range the evaluation sweeps (masks and crops up to 0.4); exported
    with a learned level map of 1,500 batches at peak learning rate 3e-3 (``densifier_steps``, ``densifier_lr``,
    `recipes.hipart.densifier`) for snapping: on validation (3 seeds, lifters retrained) 92.9 mm clean and a
    17-cell mean of 144.0 mm against 92.8 and 144.3 with 3,000 batches at 1e-3, in half the fitting time
    (recipes/hipart/README.md, "A shorter level map")."""
    return _build("prior", **_DEMO_RUN, epochs=3, batch_size=64, optimizer="adamw", lr=1e-3,
                  weight_decay=0.03, warmup_steps=20, schedule="cosine", dim=64, depth=3, heads=4,
                  dropout=0.1, densifier_steps=1500, densifier_lr=3e-3, **_DEMO_OCCLUSION)


@_register("lifter")
def lifter_demo() -> LifterConfig:
    """Small lifter (D=48, 2 blocks) with the paper's Adam step schedule, 2 epochs of batch 64 (1,006 steps), all
    three modes starting from one sparse-only lifter of 2 epochs (``warm_epochs=2``); in ``hipart`` mode the
    training levels come from 2 out-of-fold priors (``oof_folds=2``). Chosen on validation (MPJPE mm, sparse only /
    HiPART / oracle): from scratch with out-of-fold levels 105.1 / 130.9 / 97.6, from scratch with the run's
    prior's levels 105.1 / 115.7 / 97.6, warm-started with the run's prior's levels 95.2 / 96.6 / 81.6,
    warm-started with out-of-fold levels 95.2 / 95.1 / 81.6 (mask 0.4: 138.9 / 140.0 against 144.1 with the run's
    prior). The generated levels are snapped onto the observed joints (``snap_levels=True``: HiPART 94.3 against
    95.4 mm unsnapped on validation, 138.2 against 139.4 at mask 0.4), with the prior's learned level map and none
    of the tokens' own detail (``snap_detail=0.0``: 95.1 mm against 97.4 with the affine map and the whole detail,
    95.2 with the learned map and the whole detail), generated for every epoch's own occlusion draw
    (``generated="epoch"``: 3-seed validation mean lower in all 17 cells by 0.4-2.8 mm). The points of a part with
    a hidden joint are hidden (``gate_levels=True``), a pose seeing fewer than 12 joints is lifted with all its levels
    hidden (``level_min_visible=12``), no level dropout (``level_dropout=0``): 3-seed validation mean 92.8 mm clean
    and below the sparse-only lifter in all 17 cells and all 3 seeds, against 94.6 mm with the levels shown only for
    fully seen poses (session 10), 92.6 mm but 242.4 at mask 0.8 (sparse only 237.4) with the part gate alone, and
    96.4 mm with half the samples' levels dropped and a gate at 5 seen joints (session 9); no
    ``partial_level_dropout`` (0.25: 0.6 mm worse over the 17 cells, session 12); recipes/hipart/README.md,
    "Levels of the seen parts", "More no-level training")."""
    return _build("lifter", **_DEMO_RUN, epochs=2, batch_size=64, optimizer="adam", lr=2e-3,
                  schedule="step", step_epochs=1, gamma=0.65, dim=48, depth=2, heads=4, level_dropout=0.0,
                  oof_folds=2, warm_epochs=2, snap_levels=True, snap_detail=0.0, generated="epoch",
                  gate_levels=True, level_min_visible=12, **_DEMO_OCCLUSION)


# --- full: every frame of the default data; 74-85 minutes on two CPU cores, minutes on a GPU -------------
#
# The demo's settings at about 4x the model size and 3-4x the training length, over the full default dataset
# (every frame at 50 fps, training takes mirrored and on 2 body shapes: 22,692 training frames). Measured three
# times (sessions 15-17, seeds 0-2, `--jobs 2`): 1 h 24 min 52 s, 1 h 24 min 22 s and 1 h 14 min 2 s on 2 CPU
# cores, evaluation included (recipes/hipart/README.md, "The `full` preset, measured"). None of its settings
# was chosen on its own runs.

_FULL_RUN = dict(run_dir="runs/full", log_every=50, ckpt_every=500, random_views=0.5)


@_register("tokenizer")
def tokenizer_full() -> TokenizerConfig:
    """MSST at D1=96, L1=3, codebooks 256 / 512 x 64, 2 epochs of batch 128 (EMA decay 0.95)."""
    return _build("tokenizer", **_FULL_RUN, epochs=2, batch_size=128, optimizer="adamw", lr=2e-3,
                  weight_decay=0.15, warmup_steps=200, schedule="cosine", dim=96, depth=3, code_dim=64,
                  codebook_size_sparse=256, codebook_size_dense=512, local_negatives="parts", decay=0.95)


@_register("prior")
def prior_full() -> PriorConfig:
    """HiARM at D2=96, L2=6, dropout 0.1, 3 epochs of batch 128, with a learned level map of 3,000 batches at
    1e-3 (the demo's map before session 13; more data, so the longer fit)."""
    return _build("prior", **_FULL_RUN, epochs=3, batch_size=128, optimizer="adamw", lr=1e-3,
                  weight_decay=0.03, warmup_steps=200, schedule="cosine", dim=96, depth=6, heads=4,
                  dropout=0.1, densifier_steps=3000, **_DEMO_OCCLUSION)


@_register("lifter")
def lifter_full() -> LifterConfig:
    """Lifter at D=64, 3 blocks, 3 epochs of batch 128 after a 3-epoch sparse-only start, out-of-fold levels
    (2 folds), levels snapped onto the observed joints with the learned level map, generated for every epoch's
    occlusion draw, the points of parts with a hidden joint hidden and every level hidden below 12 seen joints, no
    level dropout (as the demo)."""
    return _build("lifter", **_FULL_RUN, epochs=3, batch_size=128, optimizer="adam", lr=2e-3,
                  schedule="step", step_epochs=1, gamma=0.7, dim=64, depth=3, heads=4, level_dropout=0.0,
                  oof_folds=2, warm_epochs=3, snap_levels=True, snap_detail=0.0, generated="epoch",
                  gate_levels=True, level_min_visible=12, **_DEMO_OCCLUSION)


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
