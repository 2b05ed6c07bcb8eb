"""Hierarchical pose tokenizer: HiPART's Multi-Scale Skeletal Tokenization (MSST, Algorithm 1).

Shape notation (see docs/concepts.md): ``b`` batch, ``j`` points, ``c = 2`` image coordinates
(normalised, unitless), ``p`` parts, ``r`` dense tokens per part, ``d`` features, ``k`` codes.

Forward pass (Algorithm 1 of the supplementary)::

    z_d  = E_f(x_f)                      (b, p*r, d)   Mixer over fine points, projected to dense latents
    z_s  = E_d(z_d)                      (b, p, e)     Mixer over dense latents, projected to parts
    q_s, z_s^ = C_s(z_s)                 (b, p)        sparse tokens and codes
    u    = D_s(z_s^)                     (b, p*r, d)   sparse codes lifted to dense-token resolution
    q_d, z_d^ = C_d(W [z_d, u])          (b, p, r)     dense tokens, conditioned on the sparse codes
    x_d^ = D_d(z_d^)                     (b, 48, 2)    dense pose
    x_f^ = D_f([z_d^, u])                (b, 96, 2)    fine pose from dense codes plus D_s's output
    p_A  = P_A(mean_tokens [z_d^, u])    (b, d)        action feature for the global alignment

(``e`` = ``code_dim``.) With ``projection="part"`` (default) dense latent ``(i, ·)`` pools over part
``i``'s fine points and sparse latent ``i`` over part ``i``'s dense latents, so token ``i`` means body
part ``i``; ``projection="dense"`` uses PCT's learned dense projection instead.

Stage-1 loss ``L1 = rec_dense + rec_fine + commit_sparse + commit_dense + lambda_local * L_local +
lambda_global * L_global`` with mean absolute error (L1, as PCT) on the normalised coordinates and
the commitment terms ``beta * ||z - sg(z^)||^2`` (codebooks are EMA-updated, so there is no codebook
term). During training, fine points are hidden at random (rate ``mask_rate``) and replaced by the
encoder's learned missing-point embedding, so occluded inputs are in-distribution.

Codebook defaults (documented choice): sparse 256 codes, dense 512 codes, both 128-d (= D_1, the
Mixer width). PCT uses 1024 x 512-d codes for 34 tokens of a whole pose; here each token describes
one part (or a third of one), a far smaller space, and the dense level gets twice the sparse size
because its 48 tokens carry the finer residual shape.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import nn

from skeletok._checks import check_choice, check_finite_where, check_index_range, check_tensor, check_visibility
from skeletok.alignment import global_alignment_loss, local_alignment_loss
from skeletok.codebook import HierarchicalCodebook
from skeletok.mixer import PoseMixerDecoder, PoseMixerEncoder, _part_ids

__all__ = ["HierarchicalPoseTokenizer"]

LOSS_TERMS = ("rec_dense", "rec_fine", "commit_sparse", "commit_dense", "local", "global", "total")


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
    """Mean absolute error over the visible points only.

    Args:
        pred: ``(b, j, 2)`` reconstruction.
        target: ``(b, j, 2)`` target; any value (NaN included) at invisible points.
        visible: ``(b, j)`` bool, or ``None`` for all visible (then the plain mean absolute error).

    Returns:
        0-d tensor: the sum of ``|pred - target|`` over visible points and both coordinates, divided by
        their count (at least 1, so nothing visible gives 0). Invisible points give neither loss nor gradient
        (their target is replaced by a constant before the difference, then weighted by 0).
    """
    if visible is None:
        return F.l1_loss(pred, target)
    w = rearrange(visible.to(pred.dtype), "b j -> b j 1")
    target = torch.where(w > 0, target, torch.zeros_like(target))  # NaN * 0 would be NaN
    return ((pred - target).abs() * w).sum() / (w.sum() * pred.shape[-1]).clamp_min(1.0)


class HierarchicalPoseTokenizer(nn.Module):
    """Two-level (sparse/dense) VQ tokenizer of fine 2D poses with dense and fine decoders.

    Args:
        num_fine: fine points per pose (96 in HiPART).
        num_dense: dense points per pose (48).
        num_parts: ``p``, parts = sparse tokens per pose (16).
        dense_per_part: ``r``, dense tokens per part (3).
        fine_parts: part id in ``[0, p)`` of every fine point (length ``num_fine``); required for
            ``projection="part"``.
        dense_parts: part id of every dense point (length ``num_dense``); required for ``"part"``.
        dim: Mixer width ``D_1`` (128).
        depth: Mixer blocks per encoder ``L_1`` (4).
        decoder_depth: Mixer blocks per decoder (default ``depth``).
        token_mlp_dim: hidden width of the token-mixing MLPs (64).
        channel_mlp_dim: hidden width of the channel MLPs (default ``2 * dim``).
        code_dim: code dimension of both codebooks (128).
        codebook_size_sparse: sparse codebook size ``k_s`` (256).
        codebook_size_dense: dense codebook size ``k_d`` (512).
        num_actions: number of action classes; 0 switches the global alignment term off.
        projection: ``"part"`` (part-structured) or ``"dense"`` (PCT's learned projection).
        mask_rate: fraction of fine points hidden at random in training mode (0.2).
        beta: commitment weight (0.25).
        lambda_local: weight of the local alignment loss (1.0).
        lambda_global: weight of the global alignment loss (0.3).
        tau: temperature of both alignment losses (0.07).
        local_negatives: negatives of the local alignment, ``"all"`` (other parts and other poses of
            the batch, the paper's Eq. 3) or ``"parts"`` (other parts of the same pose only).
        dropout: dropout inside the Mixer blocks.
        decay: EMA decay of the codebooks (0.99).
        kmeans_init: k-means initialise the codebooks on the first batch.
        threshold_ema_dead_code: dead-code revival threshold (EMA usage count; 0 disables).
        sync_codebook: all-reduce codebook statistics across processes (DDP only).
    """

    def __init__(self, *, num_fine: int = 96, num_dense: int = 48, num_parts: int = 16, dense_per_part: int = 3,
                 fine_parts: Sequence[int] | None = None, dense_parts: Sequence[int] | None = None,
                 dim: int = 128, depth: int = 4, decoder_depth: int | None = None, token_mlp_dim: int = 64,
                 channel_mlp_dim: int | None = None, code_dim: int = 128, codebook_size_sparse: int = 256,
                 codebook_size_dense: int = 512, num_actions: int = 0, projection: str = "part",
                 mask_rate: float = 0.2, beta: float = 0.25, lambda_local: float = 1.0, lambda_global: float = 0.3,
                 tau: float = 0.07, local_negatives: str = "all", dropout: float = 0.0, decay: float = 0.99,
                 kmeans_init: bool = True, threshold_ema_dead_code: float = 2.0, sync_codebook: bool = False):
        super().__init__()
        check_choice("projection", projection, ("part", "dense"))
        check_choice("local_negatives", local_negatives, ("all", "parts"))
        for name, value in (("num_fine", num_fine), ("num_dense", num_dense), ("num_parts", num_parts),
                            ("dense_per_part", dense_per_part)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_actions, int) or num_actions < 0:
            raise ValueError(f"num_actions must be an int >= 0, got {num_actions!r}")
        if not 0.0 <= mask_rate < 1.0:
            raise ValueError(f"mask_rate must lie in [0, 1), got {mask_rate}")
        p, r = num_parts, dense_per_part
        self.num_fine, self.num_dense, self.num_parts, self.dense_per_part = num_fine, num_dense, p, r
        self.num_actions, self.projection, self.mask_rate = num_actions, projection, float(mask_rate)
        self.lambda_local, self.lambda_global, self.tau = float(lambda_local), float(lambda_global), float(tau)
        self.local_negatives = local_negatives

        parts = {"fine": None, "dense": None, "tok_d": None, "tok_s": None}
        if projection == "part":
            for name, value, n in (("fine_parts", fine_parts, num_fine), ("dense_parts", dense_parts, num_dense)):
                if value is None:
                    raise ValueError(f"{name} is required for projection='part' (one part id per point, {n} points)")
                ids = _part_ids(name, value, n)
                if int(ids.max()) >= p:
                    raise ValueError(f"{name} must hold part ids in [0, {p}) (num_parts={p}), got max {int(ids.max())}")
                parts[name.split("_")[0]] = ids.tolist()
            parts["tok_d"] = repeat(torch.arange(p), "p -> (p r)", r=r).tolist()  # token (i, .) is part i's
            parts["tok_s"] = list(range(p))
        for level in ("dense", "fine"):  # part id of every point (None for projection="dense"), for per-part scores
            ids = None if parts[level] is None else torch.tensor(parts[level], dtype=torch.long)
            self.register_buffer(f"{level}_part_ids", ids, persistent=False)
        mixer = dict(dim=dim, token_mlp_dim=token_mlp_dim, channel_mlp_dim=channel_mlp_dim, dropout=dropout)
        dec = dict(mixer, depth=depth if decoder_depth is None else decoder_depth)
        self.encoder_fine = PoseMixerEncoder(num_points=num_fine, num_tokens=p * r, in_dim=2, depth=depth,
                                             point_parts=parts["fine"], token_parts=parts["tok_d"], **mixer)
        self.encoder_dense = PoseMixerEncoder(num_points=p * r, num_tokens=p, in_dim=dim, out_dim=code_dim,
                                              depth=depth, point_parts=parts["tok_d"], token_parts=parts["tok_s"],
                                              **mixer)
        self.decoder_sparse = PoseMixerDecoder(num_tokens=p, num_points=p * r, in_dim=code_dim, out_dim=dim,
                                               token_parts=parts["tok_s"], point_parts=parts["tok_d"], **dec)
        self.pre_quant_dense = nn.Linear(2 * dim, code_dim)
        self.decoder_dense = PoseMixerDecoder(num_tokens=p * r, num_points=num_dense, in_dim=code_dim, out_dim=2,
                                              token_parts=parts["tok_d"], point_parts=parts["dense"], **dec)
        self.decoder_fine = PoseMixerDecoder(num_tokens=p * r, num_points=num_fine, in_dim=code_dim + dim,
                                             out_dim=2, token_parts=parts["tok_d"], point_parts=parts["fine"], **dec)
        self.codebook = HierarchicalCodebook(
            codebook_sizes=(codebook_size_sparse, codebook_size_dense), dims=code_dim, beta=beta, decay=decay,
            kmeans_init=kmeans_init, threshold_ema_dead_code=threshold_ema_dead_code, sync_codebook=sync_codebook)
        if num_actions > 0:
            self.action_head = nn.Sequential(nn.LayerNorm(code_dim + dim), nn.Linear(code_dim + dim, dim), nn.GELU(),
                                             nn.Linear(dim, dim))
            self.prototypes = nn.Parameter(torch.randn(num_actions, dim))

    @contextlib.contextmanager
    def _eval_mode(self):
        """Run in eval mode, then restore every submodule's own mode (some may have been frozen).

        Switching walks every submodule twice (about 0.7 ms, a third of a batch-1 `decode`), so a tokenizer
        already in eval mode throughout is left alone."""
        modes = [(m, m.training) for m in self.modules()]
        if not any(mode for _, mode in modes):
            yield
            return
        self.eval()
        try:
            yield
        finally:
            for module, mode in modes:
                module.training = mode

    def _check_poses(self, x_f, visibility, dims):
        check_tensor("x_f", x_f, ("b", self.num_fine, 2), dims=dims, finite=visibility is None)
        visibility = check_visibility("visibility", visibility, ("b", self.num_fine), dims=dims)
        if visibility is not None:
            check_finite_where("x_f", x_f, visibility)
        return visibility

    def _check_tokens(self, q_s, q_d):
        dims: dict[str, int] = {}
        check_tensor("q_s", q_s, ("b", self.num_parts), dims=dims, kind="int")
        check_tensor("q_d", q_d, ("b", self.num_parts, self.dense_per_part), dims=dims, kind="int")
        check_index_range("q_s", q_s, self.codebook.sizes[0])
        check_index_range("q_d", q_d, self.codebook.sizes[1])

    def _quantize(self, x_f, visibility):
        """Encoder and both quantisers; returns codes, indices, commitment losses and D_s's output."""
        z_d = self.encoder_fine(x_f, visibility)
        z_s = self.encoder_dense(z_d)
        zq_s, q_s, commit_s = self.codebook.quantize(0, z_s)
        lifted = self.decoder_sparse(zq_s)
        z_d = self.pre_quant_dense(torch.cat([z_d, lifted], dim=-1))
        zq_d, q_d, commit_d = self.codebook.quantize(1, z_d)
        q_d = rearrange(q_d, "b (p r) -> b p r", r=self.dense_per_part)
        return zq_s, zq_d, q_s, q_d, commit_s, commit_d, lifted

    def _decode(self, zq_d, lifted):
        return self.decoder_dense(zq_d), self.decoder_fine(torch.cat([zq_d, lifted], dim=-1))

    @torch.no_grad()
    def encode(self, x_f: torch.Tensor, visibility: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise fine poses (eval semantics: no masking, no dropout, no codebook update).

        Args:
            x_f: ``(b, num_fine, 2)`` normalised fine 2D poses; NaN allowed at invisible points.
            visibility: optional ``(b, num_fine)`` bool, ``True`` = visible.

        Returns:
            ``q_s (b, p)`` long sparse tokens and ``q_d (b, p, r)`` long dense tokens.

        On a tokenizer that has never quantised anything, this first call k-means-initialises the
        codebooks on its own batch (as any first call does).
        """
        visibility = self._check_poses(x_f, visibility, {})
        with self._eval_mode():
            _, _, q_s, q_d, *_ = self._quantize(x_f, visibility)
        return q_s, q_d

    def decode(self, q_s: torch.Tensor, q_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode tokens to poses (eval semantics: no dropout).

        Args:
            q_s: ``(b, p)`` sparse tokens in ``[0, k_s)``.
            q_d: ``(b, p, r)`` dense tokens in ``[0, k_d)``.

        Returns:
            ``x_d_hat (b, num_dense, 2)`` and ``x_f_hat (b, num_fine, 2)``, normalised coordinates.
        """
        self._check_tokens(q_s, q_d)
        with self._eval_mode():
            lifted = self.decoder_sparse(self.codebook.lookup(0, q_s))
            zq_d = self.codebook.lookup(1, rearrange(q_d, "b p r -> b (p r)"))
            return self._decode(zq_d, lifted)

    def forward(self, x_f: torch.Tensor, x_d: torch.Tensor, *, action: torch.Tensor | None = None,
                visibility: torch.Tensor | None = None, dense_visibility: torch.Tensor | None = None,
                return_loss_breakdown: bool = False):
        """Tokenise, reconstruct and compute the stage-1 loss.

        Args:
            x_f: ``(b, num_fine, 2)`` normalised fine 2D poses (input and fine target).
            x_d: ``(b, num_dense, 2)`` normalised dense 2D poses (dense target); NaN allowed where
                ``dense_visibility`` is False.
            action: optional ``(b,)`` action labels in ``[0, num_actions)``; the global term is 0
                without them or with ``num_actions == 0``.
            visibility: optional ``(b, num_fine)`` bool; invisible fine points are fed as missing and
                left out of ``rec_fine``. In training mode a further ``mask_rate`` of the points is hidden
                from the encoder (they stay in the loss).
            dense_visibility: optional ``(b, num_dense)`` bool, ``True`` = the dense target is known; invisible
                dense points (NaN allowed there) are left out of ``rec_dense`` exactly as invisible fine points are
                left out of ``rec_fine``: they change neither the loss nor its gradients. With every point visible
                (or ``None``) ``rec_dense`` is the plain mean absolute error.
            return_loss_breakdown: also return a dict of the loss terms.

        Returns:
            ``(x_d_hat (b, num_dense, 2), x_f_hat (b, num_fine, 2), q_s (b, p), q_d (b, p, r), loss)``, plus,
            when asked, a dict of detached 0-d tensors ``rec_dense, rec_fine, commit_sparse,
            commit_dense, local, global, total``: each is the term's *weighted* contribution (``local``
            already times ``lambda_local``, commitments times ``beta`` ...), and ``total`` is their sum,
            equal to ``loss``.
        """
        dims: dict[str, int] = {}
        visibility = self._check_poses(x_f, visibility, dims)
        check_tensor("x_d", x_d, ("b", self.num_dense, 2), dims=dims, finite=dense_visibility is None)
        dense_visibility = check_visibility("dense_visibility", dense_visibility, ("b", self.num_dense), dims=dims)
        if dense_visibility is not None:
            check_finite_where("x_d", x_d, dense_visibility, points="dense points", mask="dense_visibility")
        if action is not None:
            check_tensor("action", action, ("b",), dims=dims, kind="int")
            if self.num_actions > 0:
                check_index_range("action", action, self.num_actions)
        seen = visibility
        if self.training and self.mask_rate > 0:
            keep = torch.rand(x_f.shape[:2], device=x_f.device) >= self.mask_rate
            seen = keep if seen is None else seen & keep
        zq_s, zq_d, q_s, q_d, commit_s, commit_d, lifted = self._quantize(x_f, seen)
        x_d_hat, x_f_hat = self._decode(zq_d, lifted)

        rec_dense = _masked_l1(x_d_hat, x_d, dense_visibility)
        rec_fine = _masked_l1(x_f_hat, x_f, visibility)
        local = glob = x_f_hat.new_zeros(())
        if self.lambda_local != 0:
            local = self.lambda_local * local_alignment_loss(
                zq_s, rearrange(zq_d, "b (p r) e -> b p r e", r=self.dense_per_part), tau=self.tau,
                negatives=self.local_negatives)
        if self.num_actions > 0 and action is not None and self.lambda_global != 0:
            feature = self.action_head(reduce(torch.cat([zq_d, lifted], dim=-1), "b m e -> b e", "mean"))
            glob = self.lambda_global * global_alignment_loss(feature, action, self.prototypes, tau=self.tau)
        loss = rec_dense + rec_fine + commit_s + commit_d + local + glob
        out = (x_d_hat, x_f_hat, q_s, q_d, loss)
        if not return_loss_breakdown:
            return out
        terms = (rec_dense, rec_fine, commit_s, commit_d, local, glob, loss)
        return out + ({name: t.detach() for name, t in zip(LOSS_TERMS, terms)},)
