"""Which generated levels HiPART's lifter sees: gates over the dense and fine points, in training and inference.

Shapes: ``b`` batch; the lifter's levels are ``[sparse (b, 17, 2), dense (b, 48, 2), fine (b, 96, 2)]`` and
their visibility ``[sparse (b, 17), dense (b, 48) | None, fine (b, 96) | None]`` (bool, True = shown; ``None`` =
all shown). A hidden point's coordinates never reach the lifter (`skeletok.lifter.HierarchicalLifter`).

- `gated_visibility`: the points of a part (bone) with a hidden joint hidden (``LifterConfig.gate_levels``),
  optionally except the parts the prior is sure of (``guess_min_logp``).
- `few_joints_hidden`: every generated point hidden for a pose seeing fewer than ``level_min_visible`` joints.
- `lifted_visibility`: both, as `recipes.hipart.train_lifter` and `recipes.hipart.inference.HiPART` apply them.
- `drop_levels`: training only, all generated points of a random fraction of the samples hidden
  (``level_dropout``; ``partial_level_dropout`` among the partly seen samples only).
"""

from __future__ import annotations

import torch

from .centring import visible_parts
from skeletok.tokenizer import HierarchicalPoseTokenizer

__all__ = ["hide_samples", "drop_levels", "few_joints_hidden", "gated_visibility", "gate_reads_scores",
           "lifted_visibility", "part_ids_of"]


def hide_samples(levels: list, visibility: list, keep: torch.Tensor) -> list:
    """``visibility`` of ``levels`` with the generated levels (all but the first) of the samples where ``keep``
    ``(b,)`` is False hidden; points already hidden stay hidden."""
    shown = [keep[:, None].expand(x.shape[:2]) for x in levels[1:]]
    return [visibility[0], *(k if v is None else k & v for k, v in zip(shown, visibility[1:]))]


def drop_levels(levels: list, visibility: list, rate: float, training: bool, *, partial: bool = False) -> list:
    """Hide the generated levels of a random ``rate`` of the samples (training only): the lifter learns to
    fall back on the sparse pose instead of trusting generated points blindly. With ``partial`` only samples with
    a hidden sparse joint (``visibility[0]``) are hidden, the fully seen keep their levels
    (``LifterConfig.partial_level_dropout``). Points already hidden stay hidden."""
    if rate <= 0 or not training:
        return visibility
    keep = torch.rand(levels[0].shape[0], device=levels[0].device) >= rate
    if partial:
        keep |= visibility[0].all(-1)
    return hide_samples(levels, visibility, keep)


def few_joints_hidden(levels: list, visibility: list, min_visible: int) -> list:
    """``visibility`` of the lifter's ``levels`` (``[sparse, dense, fine]``; ``None`` = all shown) with the
    generated levels hidden for every sample that sees fewer than ``min_visible`` of its sparse joints
    (``visibility[0]``; `LifterConfig.level_min_visible`): with most of the body guessed by the prior, the lifter
    reads the sparse pose alone. ``min_visible <= 0`` changes nothing."""
    if min_visible <= 0:
        return visibility
    return hide_samples(levels, visibility, visibility[0].sum(-1) >= min_visible)


def gated_visibility(visible: torch.Tensor, part_ids: tuple[torch.Tensor, torch.Tensor],
                     confidence: tuple[torch.Tensor, torch.Tensor] | None = None,
                     min_logp: float = 0.0) -> list[torch.Tensor]:
    """``[visible, dense_shown (b, 48), fine_shown (b, 96)]``: the generated points of parts with a hidden joint
    hidden (`recipes.hipart.centring.visible_parts`; ``part_ids`` = the tokenizer's dense and fine part ids),
    except, with ``confidence`` (``(b, 48)``, ``(b, 96)`` log-probabilities, `recipes.hipart.centring.
    point_confidence`), the points whose part's tokens score above ``min_logp`` (`LifterConfig.guess_min_logp`;
    0 = none, log-probabilities being <= 0)."""
    shown = [visible_parts(visible, ids) for ids in part_ids]
    if confidence is not None and min_logp < 0:
        shown = [s | (c > min_logp) for s, c in zip(shown, confidence)]
    return [visible, *shown]


def gate_reads_scores(gate, min_logp: float) -> bool:
    """Whether the part gate reads the prior's point confidence: a gate (``gate_levels``, or its `part_ids_of`)
    with a threshold below 0 (`LifterConfig.guess_min_logp`)."""
    return bool(gate) and min_logp < 0


def lifted_visibility(levels: list, visibility: list, gate: tuple[torch.Tensor, torch.Tensor] | None = None,
                      scores: tuple[torch.Tensor, torch.Tensor] | None = None, min_logp: float = 0.0,
                      min_visible: int = 0) -> list:
    """``visibility`` of the HiPART lifter's ``levels`` (``[sparse, dense, fine]``) as it reads them, in training
    and at inference alike: with ``gate`` (`part_ids_of`) the `gated_visibility` of the sparse joints (``scores``,
    ``min_logp``: its sure guesses), then `few_joints_hidden` below ``min_visible`` seen joints."""
    if gate is not None:
        visibility = gated_visibility(visibility[0], gate, scores, min_logp)
    return few_joints_hidden(levels, visibility, min_visible)


def part_ids_of(tokenizer: HierarchicalPoseTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokenizer's ``(dense_part_ids (48,), fine_part_ids (96,))``.

    Raises:
        ValueError: for a tokenizer without part-structured points (``projection="dense"``)."""
    ids = (tokenizer.dense_part_ids, tokenizer.fine_part_ids)
    if any(i is None for i in ids):
        raise ValueError("gate_levels needs a tokenizer whose points have parts (projection='part')")
    return ids
