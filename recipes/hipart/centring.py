"""Root-centred 2D for the tokenizer and the prior.

HiPART's levels are in image coordinates, so a token would have to spend its code on where the person stands in
the image as well as on the body's shape. The recipes therefore tokenize and generate poses centred on the
pelvis and add the centre back after decoding:

- stage 1 (tokenizer) centres the fine and dense poses on the *clean* sparse pelvis (ground truth, training
  only);
- stage 2 (prior) conditions on the observed sparse pose centred on `observed_centre` and predicts the tokens
  of the clean-centred fine pose;
- inference (`generate_levels`, `recipes.hipart.inference.HiPART`) centres the observed pose on
  `observed_centre`, generates, decodes and shifts the decoded levels back.

`observed_centre` uses visible joints only (pelvis; else the mid-point of the visible hips, which is how the
Human3.6M pelvis sits; else the mean of the visible joints), so moving a hidden joint never changes it.

Shapes: ``b`` batch, ``j`` = 17 sparse joints (Human3.6M-17 order), normalised screen units.
"""

from __future__ import annotations

import torch

from skeletok.skeleton import H36M_17

__all__ = ["clean_centre", "observed_centre"]

_PELVIS = H36M_17.index("pelvis")
_HIPS = [H36M_17.index("right_hip"), H36M_17.index("left_hip")]


def clean_centre(sparse_2d_clean: torch.Tensor) -> torch.Tensor:
    """The ground-truth pelvis ``(b, 1, 2)`` of clean sparse poses ``(b, 17, 2)``."""
    return sparse_2d_clean[:, _PELVIS:_PELVIS + 1]


def observed_centre(sparse_2d: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
    """The centre ``(b, 1, 2)`` of observed sparse poses ``(b, 17, 2)`` from their visible joints only.

    Pelvis if visible; else the mean of the visible hips; else the mean of all visible joints; 0 when nothing
    is visible.
    """
    if visible is None:
        return sparse_2d[:, _PELVIS:_PELVIS + 1]
    vis = visible.to(sparse_2d.dtype)
    x = torch.where(visible[..., None], sparse_2d, torch.zeros_like(sparse_2d))  # hidden values never read

    def mean(idx):
        w = vis[:, idx]
        return (x[:, idx] * w[..., None]).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)[..., None], w.sum(1) > 0

    everything, any_seen = mean(list(range(sparse_2d.shape[1])))
    hips, hips_seen = mean(_HIPS)
    pelvis = x[:, _PELVIS:_PELVIS + 1]
    centre = torch.where(hips_seen[:, None, None], hips, everything)
    centre = torch.where(visible[:, _PELVIS, None, None], pelvis, centre)
    return torch.where(any_seen[:, None, None], centre, torch.zeros_like(centre))
