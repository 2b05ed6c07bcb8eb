"""HiARM: the hierarchical autoregressive prior of HiPART (stage 2, Alg. 2 of the supplementary).

Shapes: ``b`` batch, ``j`` joints, ``p`` parts, ``r`` dense tokens per part, ``n`` prefix tokens,
``d`` features, ``k`` codebook entries (``k_s`` sparse, ``k_d`` dense).

Given the sparse 2D pose ``x_s`` and its visibility, the prior predicts the tokenizer's tokens part by
part, centre to periphery (the part order of ``docs/concepts.md``)::

    prefix  = PoseCondition(x_s, visibility)                         (b, n, d)
    e_s, e_d = proj(C_s(q_s)), proj(C_d(q_d))                        (b, p, d), (b, p, r, d)
    g^i     = LSAB([e_s^i, e_d^(i,1..r)])                            (b, p, d)
    h       = GCSAB([prefix, g^1 .. g^(p-1)])[n - 1:]                (b, p, d)   h^i predicts part i+1
    logits  = PH(h) -> sparse (b, p, k_s); PH(h, e_s) -> dense (b, p, r, k_d)
    L2      = CE_s + lambda_d * CE_d

Generation takes ``p`` sequential steps (one per part: its sparse code, then its ``r`` dense codes in
parallel given that sparse code), reusing the GCSAB keys/values of earlier steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from torch import Tensor, nn

from skeletok._checks import check_finite_where, check_index_range, check_tensor, check_visibility
from skeletok.gcsab import GCSAB
from skeletok.lsab import LSAB
from skeletok.pose_condition import PoseCondition
from skeletok.prediction_head import PredictionHead

__all__ = ["HierarchicalARPrior"]


def _choose(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """Argmax (``temperature == 0``) or a sample from ``softmax(logits / temperature)``; ``(..., k) -> (...)``."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    probs, ps = pack([(logits / temperature).softmax(dim=-1)], "* k")
    picked = torch.multinomial(probs, 1, generator=generator)
    return unpack(rearrange(picked, "n 1 -> n"), ps, "*")[0]


def _chosen_prob(logits: Tensor, picked: Tensor) -> Tensor:
    """``softmax(logits)`` at the picked codes: ``(..., k), (...) -> (...)``."""
    return logits.float().softmax(dim=-1).gather(-1, picked[..., None]).squeeze(-1)


class HierarchicalARPrior(nn.Module):
    """HiARM: predicts sparse and dense tokens part by part from a (partly hidden) sparse 2D pose.

    Args:
        num_parts: parts ``p`` (16 bones of the 17-joint skeleton).
        dense_per_part: dense tokens per part ``r`` (3).
        codebook_size_sparse: ``k_s``, size of the tokenizer's sparse codebook ``C_s``.
        codebook_size_dense: ``k_d``, size of the dense codebook ``C_d``.
        code_dim: width of the code vectors (``C_s``/``C_d`` rows); an int for both, a
            ``(sparse, dense)`` pair if they differ, None for ``dim``.
        num_joints: joints of the condition ``x_s`` (17).
        dim: model width ``D_2`` (128 in the paper).
        depth: GCSAB blocks ``L_2`` (12 in the paper).
        heads: attention heads everywhere (head width ``dim // heads``).
        lsab_depth: LSAB blocks.
        dropout: dropout in every transformer block (0.25 in the paper).
        lambda_d: weight of the dense cross-entropy (1.5 in the paper).
        cond_depth: x-transformers ``Encoder`` layers over the joint tokens of the condition.
        num_cond_tokens: prefix tokens; None = one per joint (see ``PoseCondition``).
        ff_mult: MLP width multiple in the transformer blocks.

    Before :meth:`load_codebooks` the code tables are ordinary learned embeddings, so the prior
    also trains on its own; after it, they are the tokenizer's ``C_s``, ``C_d`` (frozen by default)
    and a learned linear map (after a LayerNorm) takes them to width ``dim``.
    """

    def __init__(
        self,
        *,
        num_parts: int = 16,
        dense_per_part: int = 3,
        codebook_size_sparse: int,
        codebook_size_dense: int,
        code_dim: int | tuple[int, int] | None = None,
        num_joints: int = 17,
        dim: int = 128,
        depth: int = 12,
        heads: int = 8,
        lsab_depth: int = 1,
        dropout: float = 0.25,
        lambda_d: float = 1.5,
        cond_depth: int = 2,
        num_cond_tokens: int | None = None,
        ff_mult: int = 4,
    ):
        super().__init__()
        for name, value in [("num_parts", num_parts), ("dense_per_part", dense_per_part),
                            ("codebook_size_sparse", codebook_size_sparse),
                            ("codebook_size_dense", codebook_size_dense), ("dim", dim), ("heads", heads)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        if not (math.isfinite(lambda_d) and lambda_d >= 0):
            raise ValueError(f"lambda_d must be finite and >= 0, got {lambda_d}")
        code_dim = dim if code_dim is None else code_dim
        code_dim_s, code_dim_d = (code_dim, code_dim) if isinstance(code_dim, int) else tuple(code_dim)
        self.num_parts, self.dense_per_part, self.num_joints = num_parts, dense_per_part, num_joints
        self.codebook_size_sparse, self.codebook_size_dense = codebook_size_sparse, codebook_size_dense
        self.lambda_d = lambda_d

        self.condition = PoseCondition(dim=dim, num_joints=num_joints, depth=cond_depth, heads=heads,
                                       num_tokens=num_cond_tokens, dropout=dropout)
        self.num_prefix = self.condition.num_tokens
        self.codebook_sparse = nn.Embedding(codebook_size_sparse, code_dim_s)
        self.codebook_dense = nn.Embedding(codebook_size_dense, code_dim_d)
        self.proj_sparse = nn.Sequential(nn.LayerNorm(code_dim_s), nn.Linear(code_dim_s, dim))
        self.proj_dense = nn.Sequential(nn.LayerNorm(code_dim_d), nn.Linear(code_dim_d, dim))
        self.lsab = LSAB(dim=dim, depth=lsab_depth, heads=heads, num_slots=1 + dense_per_part,
                         dropout=dropout, ff_mult=ff_mult)
        self.gcsab = GCSAB(dim=dim, depth=depth, heads=heads, max_seq_len=self.num_prefix + num_parts,
                           dropout=dropout, ff_mult=ff_mult)
        self.head = PredictionHead(dim=dim, codebook_size_sparse=codebook_size_sparse,
                                   codebook_size_dense=codebook_size_dense, dense_per_part=dense_per_part,
                                   dropout=dropout)

    # ----------------------------------------------------------------------------------------
    # code tables

    @torch.no_grad()
    def load_codebooks(self, sparse: Tensor, dense: Tensor, *, freeze: bool = True) -> None:
        """Copy the tokenizer's code tables ``C_s``, ``C_d`` into the token embeddings (Alg. 2 line 3).

        Args:
            sparse: ``C_s`` ``(k_s, code_dim_sparse)``.
            dense: ``C_d`` ``(k_d, code_dim_dense)``.
            freeze: if True (default) the tables are not trained further.

        Raises:
            ValueError: if a table's shape does not match the prior's codebook sizes and ``code_dim``.
        """
        for name, table, emb in [("sparse", sparse, self.codebook_sparse), ("dense", dense, self.codebook_dense)]:
            check_tensor(name, table, tuple(emb.weight.shape))
            emb.weight.copy_(table.to(emb.weight))
            emb.weight.requires_grad_(not freeze)

    def embed_sparse(self, q_s: Tensor) -> Tensor:
        """``C_s(q_s)`` projected to the model width: ``(...)`` long -> ``(..., d)``."""
        return self.proj_sparse(self.codebook_sparse(q_s))

    def embed_dense(self, q_d: Tensor) -> Tensor:
        """``C_d(q_d)`` projected to the model width: ``(...)`` long -> ``(..., d)``."""
        return self.proj_dense(self.codebook_dense(q_d))

    def _summarise(self, e_s: Tensor, e_d: Tensor) -> Tensor:
        """LSAB over ``[e_s, e_d]``: ``(b, p, d), (b, p, r, d) -> (b, p, d)``."""
        return self.lsab(torch.cat((rearrange(e_s, "b p d -> b p 1 d"), e_d), dim=2))

    # ----------------------------------------------------------------------------------------
    # input checks

    def check_condition(self, x_s: Tensor, visibility: Tensor | None) -> Tensor:
        """The checks `generate` runs on its condition, for callers of `generate_unchecked`.

        Args:
            x_s: ``(b, j, 2)`` sparse pose, finite at visible joints.
            visibility: ``(b, j)`` bool (or 0/1), or None for all visible.

        Returns:
            The visibility as a bool tensor on ``x_s``'s device.

        Raises:
            ValueError: naming the wrong shape, dtype or the NaN/inf at visible joints.
        """
        return self._check_condition(x_s, visibility, {})

    def _check_condition(self, x_s, visibility, dims: dict) -> Tensor:
        check_tensor("x_s", x_s, ("b", self.num_joints, 2), dims=dims, finite=False)
        visibility = check_visibility("visibility", visibility, ("b", self.num_joints), dims=dims)
        if visibility is None:
            visibility = torch.ones(x_s.shape[:2], dtype=torch.bool, device=x_s.device)
        check_finite_where("x_s", x_s, visibility, points="joints")
        return visibility.to(x_s.device)

    def _check_tokens(self, q_s, q_d, dims: dict) -> None:
        check_tensor("q_s", q_s, ("b", self.num_parts), dims=dims, kind="int")
        check_tensor("q_d", q_d, ("b", self.num_parts, self.dense_per_part), dims=dims, kind="int")
        check_index_range("q_s", q_s, self.codebook_size_sparse)
        check_index_range("q_d", q_d, self.codebook_size_dense)

    # ----------------------------------------------------------------------------------------
    # training

    def forward(
        self,
        x_s: Tensor,
        visibility: Tensor | None,
        q_s: Tensor,
        q_d: Tensor,
        *,
        return_loss_breakdown: bool = False,
    ):
        """Teacher-forced logits and the stage-2 loss ``L2 = CE_s + lambda_d * CE_d``.

        Args:
            x_s: sparse 2D pose ``(b, j, 2)``, network-normalised; hidden joints' values are ignored.
            visibility: ``(b, j)`` bool (True = visible), or None for all visible.
            q_s: sparse tokens ``(b, p)`` long in ``[0, k_s)``.
            q_d: dense tokens ``(b, p, r)`` long in ``[0, k_d)``.
            return_loss_breakdown: also return a dict of detached scalars ``ce_sparse``,
                ``ce_dense``, ``acc_sparse``, ``acc_dense`` (teacher-forced argmax accuracy in
                [0, 1]) and ``total``.

        Returns:
            ``(logits_s, logits_d, loss)``: ``logits_s`` ``(b, p, k_s)`` for part ``i`` given the
            condition and parts ``< i``; ``logits_d`` ``(b, p, r, k_d)`` given additionally part
            ``i``'s true sparse code; ``loss`` a scalar. With ``return_loss_breakdown`` a 4-tuple
            ``(logits_s, logits_d, loss, breakdown)``.

        Raises:
            ValueError: wrong joint count, NaN at a visible joint, visibility of the wrong shape,
                token indices out of range or of the wrong shape, batch sizes that disagree.
        """
        dims: dict[str, int] = {}
        visibility = self._check_condition(x_s, visibility, dims)
        self._check_tokens(q_s, q_d, dims)

        prefix = self.condition(x_s, visibility)                    # (b, n, d)
        e_s, e_d = self.embed_sparse(q_s), self.embed_dense(q_d)    # (b, p, d), (b, p, r, d)
        g = self._summarise(e_s, e_d)                               # (b, p, d)
        h, _ = self.gcsab(torch.cat((prefix, g[:, :-1]), dim=1))    # (b, n + p - 1, d)
        h = h[:, self.num_prefix - 1 :]                             # (b, p, d): h^i predicts part i + 1
        logits_s, logits_d = self.head(h, e_s)

        ce_s = F.cross_entropy(rearrange(logits_s, "b p k -> (b p) k"), rearrange(q_s, "b p -> (b p)"))
        ce_d = F.cross_entropy(rearrange(logits_d, "b p r k -> (b p r) k"), rearrange(q_d, "b p r -> (b p r)"))
        loss = ce_s + self.lambda_d * ce_d
        if not return_loss_breakdown:
            return logits_s, logits_d, loss
        breakdown = {
            "ce_sparse": ce_s.detach(),
            "ce_dense": ce_d.detach(),
            "acc_sparse": (logits_s.argmax(-1) == q_s).float().mean().detach(),
            "acc_dense": (logits_d.argmax(-1) == q_d).float().mean().detach(),
            "total": loss.detach(),
        }
        return logits_s, logits_d, loss, breakdown

    # ----------------------------------------------------------------------------------------
    # inference

    def generate(
        self,
        x_s: Tensor,
        visibility: Tensor | None,
        *,
        temperature: float = 0.0,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
        return_probs: bool = False,
    ) -> tuple[Tensor, ...]:
        """Generate the tokens of every part, one part per step (``p`` steps).

        Runs in eval mode (dropout off; the previous mode is restored) under ``torch.inference_mode``;
        the returned indices are ordinary tensors (usable later in autograd-tracked code).

        Args:
            x_s: sparse 2D pose ``(b, j, 2)``; hidden joints' values are ignored.
            visibility: ``(b, j)`` bool (True = visible), or None for all visible.
            temperature: 0 picks the most likely code (the paper's choice); > 0 samples from
                ``softmax(logits / temperature)`` (repeat ``x_s`` along the batch, or vary
                ``generator``, for several hypotheses).
            use_cache: reuse the GCSAB keys/values of earlier steps (default). False recomputes the
                whole sequence at every step; same tokens, for checks and benchmarks.
            generator: random source for sampling (ignored at temperature 0).
            return_probs: also return the model's probability of every chosen token (the softmax of
                the logits at temperature 1, whatever ``temperature`` picked with).

        Returns:
            ``(q_s, q_d)``: ``(b, p)`` and ``(b, p, r)`` long token indices; with ``return_probs``
            ``(q_s, q_d, p_s, p_d)`` with the probabilities ``p_s (b, p)`` and ``p_d (b, p, r)`` in (0, 1].
        """
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        temperature = float(temperature)
        visibility = self._check_condition(x_s, visibility, {})
        was_training = self.training
        if was_training:  # switching modes walks every submodule: only pay for it when needed
            self.eval()
        try:
            with torch.inference_mode():
                out = self.generate_unchecked(x_s, visibility, temperature=temperature, use_cache=use_cache,
                                              generator=generator, return_probs=return_probs)
        finally:
            if was_training:
                self.train()
        return tuple(t.clone() for t in out)

    def generate_unchecked(self, x_s: Tensor, visibility: Tensor, *, temperature: float = 0.0,
                           use_cache: bool = True, generator: torch.Generator | None = None,
                           return_probs: bool = False) -> tuple[Tensor, ...]:
        """`generate` without its input checks, mode switch and ``inference_mode``: the ``p`` steps alone.

        For callers that checked ``x_s`` ``(b, j, 2)`` (finite where visible), ``visibility`` ``(b, j)`` bool and
        ``temperature >= 0`` themselves, hold the prior in eval mode and disable autograd, e.g. a pipeline compiled
        with ``torch.compile`` (data-dependent checks would split its graph) or a batch-1 loop. Same arguments and
        results as `generate` (the returned tensors may be inference tensors).
        """
        # project the code tables once (k_s + k_d rows); every step is then a row lookup
        table_s = self.proj_sparse(self.codebook_sparse.weight)     # (k_s, d)
        table_d = self.proj_dense(self.codebook_dense.weight)       # (k_d, d)
        prefix = self.condition(x_s, visibility)                    # (b, n, d)
        if use_cache:  # keys/values of earlier steps in a preallocated cache filled in place, weights fetched once
            step = self.gcsab.stepper(self.gcsab.new_cache(prefix.shape[0], dtype=prefix.dtype, device=prefix.device))
            summarise = self.lsab.summariser()

            def advance(g: Tensor, i: int) -> Tensor:  # GCSAB output at the new position, (b, d)
                return step(g, i)[:, -1]
        else:  # the straightforward reference: the whole sequence again at every step
            seq, summarise = prefix, self.lsab.summarise

            def advance(g: Tensor, i: int) -> Tensor:
                nonlocal seq
                seq = g if i == 0 else torch.cat((seq, g), dim=1)
                return self.gcsab(seq)[0][:, -1]

        h = advance(prefix, 0)                                      # (b, d): h^0 predicts part 1
        sparse, dense, prob_s, prob_d = [], [], [], []
        for i in range(self.num_parts):
            logits_s = self.head.sparse_logits(h)                                            # (b, k_s)
            q_s = _choose(logits_s, temperature, generator)                                  # (b,)
            e_s = table_s[q_s]                                                               # (b, d)
            logits_d = self.head.dense_logits(h, e_s)                                        # (b, r, k_d)
            q_d = _choose(logits_d, temperature, generator)                                  # (b, r)
            sparse.append(q_s)
            dense.append(q_d)
            if return_probs:
                prob_s.append(_chosen_prob(logits_s, q_s))
                prob_d.append(_chosen_prob(logits_d, q_d))
            if i == self.num_parts - 1:
                break
            g = summarise(torch.cat((e_s[:, None], table_d[q_d]), dim=1))                   # (b, d)
            h = advance(g[:, None], self.num_prefix + i)
        out = (sparse, dense, prob_s, prob_d) if return_probs else (sparse, dense)
        return tuple(torch.stack(t, dim=1) for t in out)
