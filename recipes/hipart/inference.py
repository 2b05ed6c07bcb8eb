"""``HiPART``: the three trained stages as one inference object.

Shapes: ``b`` batch, ``h`` hypotheses, ``p`` parts, ``r`` dense tokens per part. 2D poses are in the
networks' normalised screen units (``docs/concepts.md``: ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w``);
3D joints are Human3.6M-17, camera frame (x right, y down, z forward), root-relative, **metres**.

    model = HiPART.load("runs/demo")
    out = model.predict(sparse_2d, visibility)             # argmax tokens, as in the paper
    out = model.predict(sparse_2d, visibility, temperature=1.0, num_hypotheses=5)

``predict`` densifies the sparse pose (prior -> tokens -> tokenizer decoders) and lifts
``[sparse, dense, fine]`` to 3D. ``predict_pixels`` takes pixel keypoints and the image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange, repeat

from .centring import generate_centred
from .checkpoint import load_exported
from .config import check_level_min_visible
from .distributed import pick_device
from .imputation import JointImputer
from .fast import FROZEN, Compiled, autocast, check_dtype
from .level_gates import gate_reads_scores, lifted_visibility, part_ids_of
from .train_lifter import mapped_levels, snap_of, token_rows
from .train_prior import load_prior
from .train_tokenizer import load_tokenizer
from skeletok._checks import check_tensor, check_visibility
from skeletok.data.views.cameras import normalize_screen
from skeletok.lifter import HierarchicalLifter

__all__ = ["Prediction", "HiPART", "root_relative"]


def _imputer_of(extra: dict):
    """The `JointImputer` a lifter export carries (``guess=gaussian``), or None."""
    return JointImputer.from_export(extra["joint_imputer"]) if "joint_imputer" in extra else None


def root_relative(joints: torch.Tensor) -> torch.Tensor:
    """``(..., j, 3)`` joints with the root (joint 0, the pelvis) moved to the origin, as the lifter is trained
    and evaluated (the Human3.6M protocol sets the predicted root to zero)."""
    return joints - joints[..., :1, :]


@dataclass
class Prediction:
    """What `HiPART.predict` returns. With ``num_hypotheses > 1`` every field but ``sparse_2d`` gains an
    ``h`` axis after the batch axis.

    Attributes:
        sparse_2d: ``(b, 17, 2)`` the input, normalised.
        dense_2d: ``(b, [h,] 48, 2)`` generated dense pose, normalised.
        fine_2d: ``(b, [h,] 96, 2)`` generated fine pose, normalised.
        joints_3d: ``(b, [h,] 17, 3)`` camera frame, root-relative, metres.
        q_s: ``(b, [h,] p)`` sparse tokens (-1 where `HiPART` ``lazy`` did not generate them: fully seen poses).
        q_d: ``(b, [h,] p, r)`` dense tokens (-1 likewise).
    """

    sparse_2d: torch.Tensor
    dense_2d: torch.Tensor
    fine_2d: torch.Tensor
    joints_3d: torch.Tensor
    q_s: torch.Tensor
    q_d: torch.Tensor


class HiPART:
    """Tokenizer + prior + lifter, in eval mode on one device.

    Args:
        tokenizer: a trained `skeletok.HierarchicalPoseTokenizer`.
        prior: a trained `skeletok.HierarchicalARPrior` over that tokenizer's codes.
        lifter: a trained `skeletok.HierarchicalLifter` over ``(17, 48, 96)`` points.
        device: ``"auto"`` (cuda if available, else cpu), ``"cpu"``, ``"cuda"`` or a `torch.device`.
        data_file: the dataset the lifter was trained on (set by `load`; the default data of `evaluate`).
        compile: opt-in: ``torch.compile`` the whole argmax pipeline (generation, decoding, snapping, lifting) into
            one graph with the weights frozen into it (`recipes.hipart.fast.FROZEN`; the models must not change
            afterwards); compiles at the first call of each batch size (minutes for a whole pipeline on 2 CPU
            cores), falls back to eager with a warning if compiling fails. Sampling runs eagerly. For small models
            (the ``demo`` sizes) only: at ``h36m`` size the compiled CPU pipeline was slower than eager, and with
            the C++ wrapper compiling did not finish in 30 minutes (``recipes/hipart/README.md``, Benchmark).
        compile_options: inductor options of ``compile`` (default `recipes.hipart.fast.FROZEN`: freezing and the
            C++ wrapper; e.g. ``{"freezing": True}`` compiles faster and is slower at batch 1).
        dtype: ``"fp32"`` (default) or ``"bf16"`` (opt-in: bf16 autocast of decoding and lifting; generation stays
            fp32, so the tokens are those of fp32, while the levels and joints move by bf16 rounding; outputs are
            returned as fp32).
        snap_detail: ``None`` (default: the decoded levels as they are), or snap the levels onto the observed
            joints with this detail weight (`recipes.hipart.centring.snap_levels`; set by `load` from the lifter's
            export, since a lifter must be lifted with the levels it was trained on).
        gate_levels: hide the generated points of parts with a hidden joint from the lifter
            (`recipes.hipart.level_gates.gated_visibility`; set by `load` from the lifter's export).
        guess_min_logp: with ``gate_levels``, show the guessed parts whose tokens' mean log-probability is above
            this after all (`recipes.hipart.config.LifterConfig.guess_min_logp`; set by `load`; 0 = none).
        level_min_visible: hide the generated levels of samples that see fewer joints than this
            (`recipes.hipart.level_gates.few_joints_hidden`; set by `load` from the lifter's export; 0 = never).
        lazy: opt-in: generate tokens only for the poses whose answer reads them. With levels snapped and none of the
            tokens' detail kept (``snap_detail=0``, the presets' setting) and neither the lifter nor the gate reading
            the prior's confidence, a fully seen pose's levels are the level map of its observed joints, whatever
            the tokens: its joints and levels are those of the default pipeline, its tokens are returned as -1 and
            neither generated nor decoded. Partly seen poses are generated as usual (a different subset of a
            sampled batch draws different samples). Raises ValueError for models it does not apply to.
        imputer: the guess of hidden joints for snapping in place of the prior's
            (`recipes.hipart.imputation.JointImputer`; set by `load` from a lifter trained with ``guess=gaussian``).
            With it and ``snap_detail=0`` no pose's answer reads its tokens, so ``lazy`` generates none.
    """

    def __init__(self, tokenizer, prior, lifter, *, device: str | torch.device = "auto", data_file: str = "",
                 compile: bool = False, compile_options: dict | None = None, dtype: str = "fp32",
                 snap_detail: float | None = None, gate_levels: bool = False, level_min_visible: int = 0,
                 guess_min_logp: float = 0.0, lazy: bool = False, imputer=None):
        self.data_file = data_file
        self.guess_min_logp = float(guess_min_logp)
        self.level_min_visible = level_min_visible
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.imputer = None if imputer is None else imputer.to(self.device).eval()
        self.snap = snap_of(prior, snap_detail, self.imputer)
        self.gate = part_ids_of(tokenizer) if gate_levels else None
        self.dtype = check_dtype(dtype)
        self.tokenizer = tokenizer.to(self.device).eval()
        self.prior = prior.to(self.device).eval()
        self.lifter = lifter.to(self.device).eval()
        self.compile = bool(compile)
        self.compile_options = dict(FROZEN if compile_options is None else compile_options)
        # the whole argmax pipeline (generate, decode, snap, lift) as one graph, by default the frozen weights
        # folded into it
        self._compiled = Compiled(self._pipeline, name="the HiPART pipeline", enabled=self.compile,
                                  options=self.compile_options)
        self.lazy = bool(lazy)
        if self.lazy:
            self._check_lazy()
            # ``lazy`` on a batch of fully seen poses: level map and lifter only, one graph of its own
            self._compiled_seen = Compiled(self._lift_seen, name="the HiPART pipeline of fully seen poses",
                                           enabled=self.compile, options=self.compile_options)

    def _check_lazy(self) -> None:
        """Raise ValueError unless a fully seen pose's answer is independent of its tokens (see ``lazy``)."""
        why = ("its levels are not snapped" if self.snap is None else
               f"it keeps {self.snap[2]} of the tokens' detail (snap_detail)" if self.snap[2] else
               "its lifter reads the prior's confidence" if self.lifter.point_confidence else
               "its part gate reads the prior's confidence (guess_min_logp)"
               if gate_reads_scores(self.gate, self.guess_min_logp) else "")
        if why:
            raise ValueError(f"lazy=True needs a model whose fully seen poses do not read their tokens, but {why}; "
                             "use lazy=False")

    @property
    def level_min_visible(self) -> int:
        """Samples seeing fewer joints than this are lifted with their generated levels hidden (0 = never).

        Raises:
            ValueError: on assigning anything but an int in [0, 17]."""
        return self._level_min_visible

    @level_min_visible.setter
    def level_min_visible(self, value: int) -> None:
        self._level_min_visible = check_level_min_visible(value)

    def reference(self, *, lazy: bool = False) -> "HiPART":
        """The same modules and level settings (snapping, gates) in the default pipeline: fp32, eager (and
        ``lazy`` if asked); the reference that the opt-in ``compile``, ``dtype`` and ``lazy`` are checked against
        (`recipes.hipart.bench`)."""
        return HiPART(self.tokenizer, self.prior, self.lifter, device=self.device, data_file=self.data_file,
                      snap_detail=self.snap[2] if self.snap else None, gate_levels=self.gate is not None,
                      level_min_visible=self.level_min_visible, guess_min_logp=self.guess_min_logp, lazy=lazy,
                      imputer=self.imputer)

    @property
    def compile_active(self) -> bool:
        """Whether the argmax pipeline runs compiled (False without ``compile`` or after compiling failed)."""
        return self._compiled.active

    @classmethod
    def load(cls, run_dir: str | Path, *, device: str | torch.device = "auto", compile: bool = False,
             compile_options: dict | None = None, dtype: str = "fp32", lazy: bool = False) -> "HiPART":
        """Load ``tokenizer.pt``, ``prior.pt`` and ``lifter_hipart.pt`` from a run directory (``compile``,
        ``compile_options``, ``dtype`` and ``lazy``: see the class).

        Raises:
            FileNotFoundError: naming the missing file and the command that writes it.
        """
        run_dir = Path(run_dir)
        for name, command in (("tokenizer.pt", "train-tokenizer"), ("prior.pt", "train-prior"),
                              ("lifter_hipart.pt", "train-lifter mode=hipart")):
            if not (run_dir / name).is_file():
                raise FileNotFoundError(f"{run_dir / name} not found; train it with `skeletok hipart {command}` "
                                        f"or run `skeletok hipart demo --out {run_dir}`")
        lifter, payload = load_exported(run_dir / "lifter_hipart.pt", HierarchicalLifter)
        mode = payload["extra"].get("mode")
        if mode != "hipart":
            raise ValueError(f"{run_dir / 'lifter_hipart.pt'} was trained in mode {mode!r}, expected 'hipart'")
        extra = payload["extra"]
        return cls(load_tokenizer(run_dir / "tokenizer.pt"), load_prior(run_dir / "prior.pt"),
                   lifter.requires_grad_(False), device=device, data_file=str(extra.get("data_file", "")),
                   compile=compile, compile_options=compile_options, dtype=dtype,
                   snap_detail=extra.get("snap_detail") if extra.get("snap_levels") else None,
                   gate_levels=bool(extra.get("gate_levels", False)),
                   level_min_visible=int(extra.get("level_min_visible", 0)),
                   guess_min_logp=float(extra.get("guess_min_logp", 0.0)), lazy=lazy,
                   imputer=_imputer_of(extra))

    @torch.inference_mode()
    def densify(self, sparse_2d: torch.Tensor, visibility: torch.Tensor | None = None, *,
                temperature: float = 0.0, generator: torch.Generator | None = None, use_cache: bool = True):
        """Generate the dense and fine poses of a sparse pose (no lifting).

        The prior and the tokenizer work on pelvis-centred poses (`recipes.hipart.centring`); the returned
        levels are shifted back to the input's frame. The tokens describe the centred pose.

        Args:
            sparse_2d: ``(b, 17, 2)`` normalised.
            visibility: ``(b, 17)`` bool, ``None`` = all visible.
            temperature: 0 = argmax tokens (the paper); > 0 samples.
            generator: random source for sampling.
            use_cache: reuse attention keys/values while generating.

        Returns:
            ``(dense_2d (b, 48, 2), fine_2d (b, 96, 2), q_s (b, p), q_d (b, p, r))``.
        """
        vis = None if visibility is None else visibility.to(self.device)
        return self._densify(sparse_2d.to(self.device), vis, temperature, generator, use_cache)[:4]

    def _densify(self, sparse_2d, vis, temperature, generator, use_cache, confidence: bool = False) -> tuple:
        """`generate_centred` in fp32 (the reference tokens), the decoding under this model's dtype; levels in fp32."""
        decode = self.tokenizer.decode if self.dtype == "fp32" else self._decode_autocast
        return generate_centred(self.prior, self.tokenizer, sparse_2d, vis, temperature=temperature,
                                use_cache=use_cache, generator=generator,
                                regressor=getattr(self.prior, "joint_regressor", None), return_confidence=confidence,
                                snap=self.snap, decode=decode)

    def _decode_autocast(self, q_s: torch.Tensor, q_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.device, self.dtype):
            dense, fine = self.tokenizer.decode(q_s, q_d)
        return dense.float(), fine.float()

    def _pipeline(self, sparse_2d, visibility, temperature=0.0, generator=None, use_cache=True,
                  hide_levels=False, tokens="all") -> tuple:
        """Densify and lift (`densify_and_lift`'s arithmetic; inputs already on the device); with its defaults, the
        argmax pipeline that ``compile=True`` compiles into one graph. ``tokens``: ``"all"`` generated, ``"needed"``
        only for the `_token_rows` (``lazy``), ``"none"`` (``lazy``, when no pose's answer reads one)."""
        scored = self.lifter.point_confidence
        guesses = gate_reads_scores(self.gate, self.guess_min_logp)
        if tokens == "none":
            out = self._mapped(sparse_2d, visibility)
        elif tokens == "needed":
            out = self._densify_lazily(sparse_2d, visibility, temperature, generator, use_cache)
        else:
            out = self._densify(sparse_2d, visibility, temperature, generator, use_cache, confidence=scored or guesses)
        dense, fine, q_s, q_d = out[:4]
        extra = {"confidence": [None, *out[4]]} if scored else {}
        if hide_levels:
            shown = [torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device) for x in (dense, fine)]
        else:
            shown = lifted_visibility([sparse_2d, dense, fine], [visibility, None, None], self.gate,
                                      out[4] if guesses else None, self.guess_min_logp, self.level_min_visible)[1:]
        with autocast(self.device, self.dtype):
            joints = root_relative(self.lifter([sparse_2d, dense, fine], [visibility, *shown], **extra).float())
        return dense, fine, q_s, q_d, joints

    def _mapped(self, sparse_2d: torch.Tensor, visibility: torch.Tensor) -> tuple:
        """``lazy``'s answer for poses ``(b, 17, 2)`` whose answer reads no token: the level map of the observed
        joints, the hidden ones guessed by the imputer (`recipes.hipart.train_lifter.mapped_levels`, what snapping
        gives them), and -1 tokens."""
        b, p, r = sparse_2d.shape[0], self.tokenizer.num_parts, self.tokenizer.dense_per_part
        q_s, q_d = (torch.full(shape, -1, dtype=torch.long, device=sparse_2d.device) for shape in ((b, p), (b, p, r)))
        joints = sparse_2d if self.imputer is None else self.imputer(sparse_2d, visibility)
        return (*mapped_levels(self.prior, joints), q_s, q_d)

    def _token_rows(self, visibility: torch.Tensor) -> torch.Tensor:
        """``(b,)`` bool: under ``lazy``, the poses whose answer reads their tokens (`train_lifter.token_rows` with
        no gate on the joint count: a pose lifted without levels still returns its generated levels)."""
        return token_rows(visibility, snap=0.0, scored=False, min_visible=0, imputed=self.imputer is not None)

    def _densify_lazily(self, sparse_2d, visibility, temperature, generator, use_cache) -> tuple:
        """``lazy`` densification: `_mapped` for every pose, then the `_token_rows` generated and decoded."""
        dense, fine, q_s, q_d = self._mapped(sparse_2d, visibility)
        rows = self._token_rows(visibility).nonzero().squeeze(1)
        if rows.numel():
            made = self._densify(sparse_2d[rows], visibility[rows], temperature, generator, use_cache)
            dense, fine, q_s, q_d = (x.index_copy(0, rows, y.to(x.dtype)) for x, y in zip((dense, fine, q_s, q_d), made))
        return dense, fine, q_s, q_d

    def _lift_seen(self, sparse_2d: torch.Tensor, visibility: torch.Tensor) -> tuple:
        """``lazy``'s whole pipeline when no pose's answer reads a token (compiled on its own with ``compile``)."""
        return self._pipeline(sparse_2d, visibility, tokens="none")

    def _runs_compiled(self, temperature: float, use_cache: bool, hide_levels: bool = False) -> bool:
        """Whether `densify_and_lift` takes the compiled argmax pipeline for these settings."""
        return self.compile_active and temperature == 0 and use_cache and not hide_levels

    @torch.inference_mode()
    def densify_and_lift(self, sparse_2d: torch.Tensor, visibility: torch.Tensor, *, temperature: float = 0.0,
                         generator: torch.Generator | None = None, use_cache: bool = True, hide_levels: bool = False):
        """`densify`, then lift ``[sparse, dense, fine]`` (with the points' confidence when the lifter reads it).

        With ``compile=True``, argmax generation with the cache (``temperature=0``, ``use_cache=True``, levels
        shown) runs the compiled pipeline, which compiles once per batch size (`predict` pads its last batch to
        ``batch_size``, so a dataset costs at most two compilations); sampling and the ablations run eagerly.

        Args:
            sparse_2d: ``(b, 17, 2)`` normalised, on ``self.device``.
            visibility: ``(b, 17)`` bool, on ``self.device``.
            temperature: as in `densify`.
            generator: as in `densify`.
            use_cache: as in `densify`.
            hide_levels: lift with the dense and fine levels marked hidden (an ablation: what the lifter does
                from the sparse pose alone; the levels are still generated and returned).

        Returns:
            ``(dense_2d (b, 48, 2), fine_2d (b, 96, 2), q_s (b, p), q_d (b, p, r), joints_3d (b, 17, 3))``, the
            joints root-relative.

        Raises:
            ValueError: on bad shapes or NaN/inf at visible joints (the prior's checks).
        """
        compiled = self._runs_compiled(temperature, use_cache, hide_levels)
        if compiled or (self.lazy and not hide_levels):
            visibility = self.prior.check_condition(sparse_2d, visibility)  # the checks the compiled graph skips
        if self.lazy and not hide_levels:
            need = self._token_rows(visibility)
            if not bool(need.any()):
                return self._compiled_seen(sparse_2d, visibility)
        if compiled:
            out = self._compiled(sparse_2d, visibility)
            if self.lazy:  # a mixed batch runs the whole compiled graph; the tokens no answer read are -1
                out = (*out[:2], out[2].masked_fill(~need[:, None], -1), out[3].masked_fill(~need[:, None, None], -1),
                       out[4])
            return out
        return self._pipeline(sparse_2d, visibility, temperature, generator, use_cache, hide_levels,
                              tokens="needed" if self.lazy else "all")

    @torch.inference_mode()
    def predict(self, sparse_2d: torch.Tensor, visibility: torch.Tensor | None = None, *,
                temperature: float = 0.0, num_hypotheses: int = 1, generator: torch.Generator | None = None,
                batch_size: int = 256, use_cache: bool = True) -> Prediction:
        """Densify and lift a batch of sparse 2D poses.

        Args:
            sparse_2d: ``(b, 17, 2)`` Human3.6M-17 keypoints, normalised screen units.
            visibility: ``(b, 17)`` bool (True = seen); hidden joints' coordinates are ignored.
            temperature: 0 = argmax (one deterministic answer); > 0 samples tokens.
            num_hypotheses: hypotheses per pose; > 1 needs ``temperature > 0``.
            generator: random source for sampling.
            batch_size: poses per forward pass.
            use_cache: reuse attention keys/values while generating.

        Returns:
            A `Prediction`.

        Raises:
            ValueError: on bad shapes, NaN/inf, or ``num_hypotheses > 1`` at temperature 0.
        """
        dims: dict[str, int] = {}
        check_tensor("sparse_2d", sparse_2d, ("b", 17, 2), dims=dims)
        visibility = check_visibility("visibility", visibility, ("b", 17), dims=dims)
        if visibility is None:
            visibility = torch.ones(sparse_2d.shape[:2], dtype=torch.bool)
        if not isinstance(num_hypotheses, int) or num_hypotheses < 1:
            raise ValueError(f"num_hypotheses must be an int >= 1, got {num_hypotheses!r}")
        if num_hypotheses > 1 and temperature <= 0:
            raise ValueError("num_hypotheses > 1 needs temperature > 0 (argmax gives one answer)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        h = num_hypotheses
        x = repeat(sparse_2d.float(), "b j c -> (b h) j c", h=h)
        vis = repeat(visibility, "b j -> (b h) j", h=h)
        parts = {"dense_2d": [], "fine_2d": [], "joints_3d": [], "q_s": [], "q_d": []}
        for start in range(0, x.shape[0], batch_size):
            xs = x[start:start + batch_size].to(self.device)
            vs = vis[start:start + batch_size].to(self.device)
            n = xs.shape[0]
            if start and n < batch_size and self._runs_compiled(temperature, use_cache):  # one compiled shape
                xs = torch.cat((xs, xs[-1:].expand(batch_size - n, -1, -1)))
                vs = torch.cat((vs, vs[-1:].expand(batch_size - n, -1)))
            out = self.densify_and_lift(xs, vs, temperature=temperature, generator=generator, use_cache=use_cache)
            dense, fine, q_s, q_d, joints = (value[:n] for value in out)
            for key, value in zip(parts, (dense, fine, joints, q_s, q_d)):
                parts[key].append(value.float().cpu() if value.is_floating_point() else value.cpu())
        out = {key: torch.cat(values) for key, values in parts.items()}
        if h > 1:
            out = {key: rearrange(value, "(b h) ... -> b h ...", h=h) for key, value in out.items()}
        return Prediction(sparse_2d=sparse_2d.float().cpu(), **out)

    def predict_pixels(self, keypoints_px, visibility=None, *, image_size: tuple[float, float], **kwargs) -> Prediction:
        """`predict` for pixel keypoints ``(b, 17, 2)`` of images of ``image_size = (width, height)`` pixels.

        The returned 2D levels stay normalised; `skeletok.data.views.cameras.unnormalize_screen` maps them back.
        """
        w, h = image_size
        if not (w > 0 and h > 0):
            raise ValueError(f"image_size must be (width, height) > 0 pixels, got {image_size!r}")
        pts = torch.as_tensor(normalize_screen(torch.as_tensor(keypoints_px).double().numpy(), w, h)).float()
        return self.predict(pts, None if visibility is None else torch.as_tensor(visibility), **kwargs)
