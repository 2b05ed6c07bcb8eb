"""``skeletok hipart bench``: throughput of each HiPART stage and of the whole pipeline, as JSON.

Launch::

    skeletok hipart bench [--run runs/demo | --preset demo] [--batch-sizes 1 256] [--threads N] [--out bench.json]
                          [--peer DIFFPOSE_DIR [--rounds 5]] [--compile [--compile-options cpp_wrapper=false]]
                          [--dtype fp32|bf16] [--lazy] [--jobs N]

Measures, in one process and one run (so ratios are meaningful even though absolute timings vary ~2x between
runs on a shared machine):

- the machine's square-matmul throughput (fp32 and bf16, GFLOP/s): the baseline;
- frames/s of each inference stage at every batch size: ``prior_generate`` (16 autoregressive steps, with and
  without cached keys/values), ``tokenizer_decode``, ``lifter`` (161 points) and ``lifter_sparse_only``
  (17 points), and the whole ``pipeline`` (generate + decode + lift) with and without the cache;
- FLOPs per frame of each stage (torch's FlopCounterMode, batch 1) and, at every batch size, the fraction of the
  fp32 matmul peak measured above that the whole pipeline reaches (frames/s x FLOPs per frame / peak);
- ratios: cached / uncached pipeline and prior;
- with ``--peer DIR`` (an exported snapshot of the public GONGJIA0208/Diffpose repository, never shipped here),
  ``peer``: DiffPose's own H36M-CPN test path and the HiPART pipeline timed in turn on the same input for
  ``--rounds`` rounds per batch size, and the median ratio skeletok / DiffPose frames/s (`recipes.hipart.peer`).
  There are no fixed frames/s targets: a machine's speed varies too much between runs for them to mean anything.
- with ``--compile``, ``--dtype bf16`` and/or ``--lazy`` (opt-in, `recipes.hipart.fast`; ``lazy``: tokens only for
  partly seen poses, `recipes.hipart.inference.HiPART`), the ``pipeline`` and the ``peer`` comparison use them; ``pipeline_reference`` is then the default fp32 eager pipeline of the same run, and
  ``fast`` reports whether compiling took effect and how far the outputs move from the fp32 eager ones on the
  benchmark input (token agreement, mean joint distance) and, with ``--run``, on up to 2,048 test samples of the
  run's dataset (MPJPE of both, and their difference, mm).

With ``--run`` the trained models are timed; otherwise models of the ``--preset`` sizes are built with random
weights (the speed does not depend on the weights), and two more sections describe that preset:

- ``training``: samples/s of one training step (forward, loss, backward; no optimiser) of each stage at the
  preset's batch size, on random inputs of the right shapes, in the same run;
- ``side_by_side`` (``--jobs N``): the prior's and the lifter's training step in one process with every thread
  against N processes side by side with 1/N of the threads each (`side_by_side`; what ``skeletok hipart demo
  --jobs N`` does with independent stages): samples/s of both and their ratio, in the same run;
- ``paper`` (``--preset h36m``): the paper's complexity (supplementary Table 3 at L1 = 4, L2 = 12,
  D1 = D2 = 128: 2.4 M parameters, 2.24 GFLOPs) beside ours: parameters per stage and in all, FLOPs per frame of
  the pipeline with and without the cache (the paper does not say which it counts).

Numbers go to stdout (and ``--out``) as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
from multiprocessing import get_context
from pathlib import Path

import torch

from .presets import get_preset
from .demo import threads_per_job
from .densifier import LevelDensifier
from .fast import FROZEN, check_dtype, parse_options
from .inference import HiPART
from .launch import add_command, command_main
from .peer import compare, load_diffpose
from .timing import count_flops, matmul_gflops, throughput
from .train_lifter import lifter_kwargs
from .train_prior import prior_kwargs
from .train_tokenizer import tokenizer_kwargs
from skeletok.lifter import HierarchicalLifter
from skeletok.prior import HierarchicalARPrior
from skeletok.tokenizer import HierarchicalPoseTokenizer

__all__ = ["PAPER_TABLE_3", "build_models", "training_throughput", "side_by_side", "run_bench", "add_parser", "main"]

# the paper's default configuration (supplementary Table 3: L1 = 4, L2 = 12, D1 = D2 = 128): 42.0 mm MPJPE
PAPER_TABLE_3 = {"params_m": 2.4, "flops_g": 2.24, "source": "HiPART supplementary, Table 3 (L1=4, L2=12, D1=D2=128)"}


def _parts(num_points: int, num_parts: int) -> list[int]:
    """An even part assignment for random-weight models (every part gets points)."""
    return [i * num_parts // num_points for i in range(num_points)]


def build_models(preset: str = "demo", **settings) -> tuple[HiPART, HierarchicalLifter]:
    """Random-weight HiPART (with the opt-in ``settings`` of `HiPART`: ``compile``, ``compile_options``, ``dtype``,
    ``lazy``) and sparse-only lifter of the ``preset`` sizes (HiPART's 16 parts, 48/96 points)."""
    tok_cfg, prior_cfg = get_preset("tokenizer", preset), get_preset("prior", preset)
    lifter_cfg = get_preset("lifter", preset)
    meta = {"parts_fine": _parts(96, 16), "parts_dense": _parts(48, 16), "num_parts": 16, "num_actions": 0}
    tokenizer = HierarchicalPoseTokenizer(**tokenizer_kwargs(tok_cfg, meta))
    prior = HierarchicalARPrior(**prior_kwargs(prior_cfg, tokenizer))
    lifter = HierarchicalLifter(**lifter_kwargs(lifter_cfg))
    sparse_only = HierarchicalLifter(**lifter_kwargs(get_preset("lifter", preset, ["mode=sparse_only"])))
    # Frozen like the loaded models of a run: torch's FLOP counter hooks every module input that requires grad,
    # and under inference mode a parameter passed as an input (the prior's code tables) has no grad_fn to hook.
    for module in (tokenizer, prior, lifter, sparse_only):
        module.requires_grad_(False)
    snap = lifter_cfg.snap_detail if lifter_cfg.snap_levels else None
    if snap is not None:  # the preset snaps its levels: random regressors of the trained shapes, same cost
        g = torch.Generator().manual_seed(0)
        joint = torch.rand(17, 96, generator=g)
        for name, value in (("joint_regressor", joint / joint.sum(1, keepdim=True)),
                            ("dense_regressor", torch.randn(96, 33, generator=g) * 0.1),
                            ("fine_regressor", torch.randn(192, 33, generator=g) * 0.1)):
            prior.register_buffer(name, value, persistent=False)
        if prior_cfg.densifier_steps:  # and the learned level map, random weights of the trained size
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                prior.level_densifier = LevelDensifier().eval().requires_grad_(False)
    return HiPART(tokenizer, prior, lifter, device="cpu", snap_detail=snap, **settings), sparse_only.eval()


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


TRAINING_STAGES = ("tokenizer", "prior", "lifter", "lifter_sparse_only")  # the keys of `_training_steps`


def _training_steps(preset: str, seed: int) -> dict[str, tuple[int, object]]:
    """Stage name -> (batch size, one training step on random inputs) for fresh random-weight models of ``preset``
    in training mode; call the steps with gradients enabled."""
    torch.manual_seed(seed)
    model, sparse_only = build_models(preset)
    tok, prior, lifter = model.tokenizer, model.prior, model.lifter
    for module in (tok, prior, lifter, sparse_only):
        module.requires_grad_(True).train()
    sizes = {stage: get_preset(stage, preset).batch_size for stage in ("tokenizer", "prior", "lifter")}

    def step(net, loss_of):
        net.zero_grad(set_to_none=True)
        loss_of().backward()

    b_t, b_p, b_l = sizes["tokenizer"], sizes["prior"], sizes["lifter"]
    x_f, x_d = torch.rand(b_t, 96, 2) - 0.5, torch.rand(b_t, 48, 2) - 0.5
    x_s, vis = torch.rand(b_p, 17, 2) - 0.5, torch.rand(b_p, 17) > 0.2
    q_s = torch.randint(0, prior.codebook_sparse.num_embeddings, (b_p, 16))
    q_d = torch.randint(0, prior.codebook_dense.num_embeddings, (b_p, 16, 3))
    levels = [torch.rand(b_l, n, 2) - 0.5 for n in (17, 48, 96)]
    target = torch.rand(b_l, 17, 3)
    return {
        "tokenizer": (b_t, lambda: step(tok, lambda: tok(x_f, x_d)[-1])),
        "prior": (b_p, lambda: step(prior, lambda: prior(x_s, vis, q_s, q_d)[2])),
        "lifter": (b_l, lambda: step(lifter, lambda: (lifter(levels) - target).norm(dim=-1).mean())),
        "lifter_sparse_only": (b_l, lambda: step(sparse_only,
                                                 lambda: (sparse_only(levels[:1]) - target).norm(dim=-1).mean())),
    }


def training_throughput(preset: str, *, min_time_s: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Samples/s of one training step (forward, loss, backward; no optimiser) of each stage of ``preset``, at the
    preset's batch size, on random inputs, with fresh random-weight models in training mode.

    Returns:
        ``{"tokenizer", "prior", "lifter", "lifter_sparse_only"}`` -> samples/s, plus ``batch_size`` and
        ``flops_per_sample`` (FlopCounterMode over forward and backward of one step, divided by the batch) per
        stage: what a GPU-hour estimate needs (hours = samples x epochs x FLOPs per sample / sustained FLOP/s).
    """
    with torch.inference_mode(False), torch.enable_grad():
        stages = _training_steps(preset, seed)
        out = {name: throughput(fn, items=b, min_time_s=min_time_s) for name, (b, fn) in stages.items()}
        flops = {name: count_flops(fn) / b for name, (b, fn) in stages.items()}
    return {**out, "batch_size": {name: b for name, (b, _) in stages.items()}, "flops_per_sample": flops}


def _side_by_side_worker(preset: str, stage: str, threads: int, min_time_s: float, seed: int, barrier,
                         results) -> None:
    """One process of `side_by_side`: build, warm up, wait for the others, then time ``stage``'s training step."""
    torch.set_num_threads(threads)
    with torch.inference_mode(False), torch.enable_grad():
        batch, fn = _training_steps(preset, seed)[stage]
        fn(), fn()
        barrier.wait()
        results.put(throughput(fn, items=batch, min_time_s=min_time_s, warmup=0))


def side_by_side(preset: str = "demo", *, stage: str = "prior", jobs: int = 2, min_time_s: float = 3.0,
                 seed: int = 0) -> dict:
    """Training samples/s of one stage: one process with every thread against ``jobs`` processes side by side with
    ``1/jobs`` of the threads each (what ``skeletok hipart demo --jobs`` does), measured in the same run.

    Returns:
        ``stage``, ``jobs``, ``threads`` (every thread) and ``threads_per_job``, ``one_process`` and
        ``side_by_side`` (samples/s, summed over the processes) and ``ratio`` = side by side / one process.

    Raises:
        ValueError: for an unknown stage or ``jobs < 2``.
    """
    if stage not in TRAINING_STAGES or jobs < 2:
        raise ValueError(f"stage must be one of {TRAINING_STAGES} and jobs >= 2, got {stage!r} and {jobs}")
    context = get_context("spawn")
    threads = torch.get_num_threads()
    per_job = threads_per_job(threads, jobs)

    def measure(processes: int, per_process: int) -> float:
        barrier, results = context.Barrier(processes), context.Queue()
        workers = [context.Process(target=_side_by_side_worker, args=(preset, stage, per_process, min_time_s, seed,
                                                                       barrier, results))
                   for _ in range(processes)]
        for worker in workers:
            worker.start()
        total = sum(results.get(timeout=600) for _ in workers)
        for worker in workers:
            worker.join()
        return total

    alone, side = measure(1, threads), measure(jobs, per_job)
    return {"stage": stage, "jobs": jobs, "threads": threads, "threads_per_job": per_job,
            "one_process": alone, "side_by_side": side, "ratio": side / alone}


@torch.inference_mode()
def run_bench(*, run: str | Path | None = None, preset: str = "demo", batch_sizes=(1, 256),
              min_time_s: float = 1.0, seed: int = 0, threads: int | None = None, peer: str | Path | None = None,
              rounds: int = 5, compile: bool = False, compile_options: dict | None = None,
              dtype: str = "fp32", lazy: bool = False, jobs: int = 0) -> dict:
    """Measure and return the benchmark dict described in the module docstring.

    ``threads`` sets torch's intra-op threads (default: torch's choice). At batch 1 the pipeline is bound by
    per-operation overhead and one thread is faster (measured here: 68 against 59 frames/s). ``peer`` (a
    DiffPose snapshot directory) adds the ``peer`` comparison, ``rounds`` rounds per batch size. ``compile``,
    ``compile_options``, ``dtype`` and ``lazy``: the opt-in settings of `HiPART` for the pipeline (module docstring).
    """
    check_dtype(dtype)
    peer_fn = load_diffpose(peer) if peer else None  # a bad directory fails before any timing
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    settings = dict(compile=compile, compile_options=compile_options, dtype=dtype, lazy=lazy)
    if run:
        from .train_lifter import load_lifter

        model = HiPART.load(run, device="cpu", **settings)
        sparse_only = load_lifter(Path(run) / "lifter_sparse_only.pt")[0]
    else:
        model, sparse_only = build_models(preset, **settings)
    fast = compile or dtype != "fp32" or lazy
    # the default pipeline (fp32, eager) on the same modules: the reference of the opt-in settings; and the fp32
    # eager twin of the timed pipeline, whose FLOPs the counter can see (not a compiled graph's)
    reference = model.reference() if fast else model
    twin = model.reference(lazy=lazy) if compile or dtype != "fp32" else model
    result: dict = {
        "machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
                    "matmul_gflops_fp32": matmul_gflops(dtype=torch.float32, min_time_s=min_time_s),
                    "matmul_gflops_bf16": matmul_gflops(dtype=torch.bfloat16, min_time_s=min_time_s)},
        "models": {"source": str(run) if run else f"random weights, preset {preset}",
                   "params": {"tokenizer": _params(model.tokenizer), "prior": _params(model.prior),
                              "lifter": _params(model.lifter), "lifter_sparse_only": _params(sparse_only)}},
        "fps": {}, "flops_per_frame": {}, "ratios": {},
    }
    tok, prior, lifter = model.tokenizer, model.prior, model.lifter

    def stages(b: int, pipeline: HiPART = model) -> dict:
        x = torch.rand(b, 17, 2) * 2 - 1
        vis = torch.ones(b, 17, dtype=torch.bool)
        q_s, q_d = prior.generate(x, vis)
        dense, fine = tok.decode(q_s, q_d)
        return {
            "prior_generate_cached": lambda: prior.generate(x, vis, use_cache=True),
            "prior_generate_uncached": lambda: prior.generate(x, vis, use_cache=False),
            "tokenizer_decode": lambda: tok.decode(q_s, q_d),
            "lifter": lambda: lifter([x, dense, fine], [vis, None, None]),
            "lifter_sparse_only": lambda: sparse_only([x], [vis]),
            "pipeline_cached": lambda: pipeline.predict(x, vis, use_cache=True),
            "pipeline_uncached": lambda: reference.predict(x, vis, use_cache=False),
            **({"pipeline_reference": lambda: reference.predict(x, vis, use_cache=True)} if fast else {}),
        }

    for name, fn in stages(1, twin).items():  # FLOPs of the fp32 eager functions
        result["flops_per_frame"][name] = count_flops(fn)
    for b in batch_sizes:
        result["fps"][f"batch_{b}"] = {name: throughput(fn, items=b, min_time_s=min_time_s)
                                      for name, fn in stages(b).items()}
    peak = result["machine"]["matmul_gflops_fp32"] * 1e9
    for b in batch_sizes:
        fps = result["fps"][f"batch_{b}"]
        ratios = {
            "pipeline_cached_over_uncached": fps["pipeline_cached"] / fps["pipeline_uncached"],
            "prior_cached_over_uncached": fps["prior_generate_cached"] / fps["prior_generate_uncached"],
            "pipeline_flops_fraction_of_matmul_peak": fps["pipeline_cached"] * result["flops_per_frame"]["pipeline_cached"] / peak,
        }
        if fast:
            ratios["pipeline_over_reference"] = fps["pipeline_cached"] / fps["pipeline_reference"]
        result["ratios"][f"batch_{b}"] = ratios
    if fast:
        result["fast"] = _agreement(model, reference, run, seed=seed)
    if not run:
        result["training"] = training_throughput(preset, min_time_s=min_time_s, seed=seed)
        if jobs:  # the demo's stages side by side (`skeletok hipart demo --jobs`)
            result["side_by_side"] = {stage: side_by_side(preset, stage=stage, jobs=jobs, seed=seed,
                                                          min_time_s=min_time_s) for stage in ("prior", "lifter")}
    if not run and preset == "h36m":
        params = result["models"]["params"]
        result["paper"] = {
            "table_3": PAPER_TABLE_3,
            "ours": {"params_m": {k: v / 1e6 for k, v in params.items()},
                     "params_m_tokenizer_prior_lifter": (params["tokenizer"] + params["prior"] + params["lifter"]) / 1e6,
                     "flops_g_pipeline_cached": result["flops_per_frame"]["pipeline_cached"] / 1e9,
                     "flops_g_pipeline_uncached": result["flops_per_frame"]["pipeline_uncached"] / 1e9},
        }
    if peer_fn is not None:
        result["peer"] = {
            "source": str(peer),
            "what": "DiffPose H36M-CPN test path (GCNpose + 2 DDIM steps of GCNdiff, 1 sample, fp32, random "
                    "weights) against HiPART.predict, interleaved on the same input; ratio = skeletok / DiffPose",
            **compare(lambda x: model.predict(x, batch_size=x.shape[0]), peer_fn, batch_sizes=batch_sizes,
                      rounds=rounds, min_time_s=min_time_s, seed=seed),
        }
    return result


@torch.inference_mode()
def _agreement(model: HiPART, reference: HiPART, run, *, seed: int, batch: int = 256,
               max_samples: int = 2048) -> dict:
    """How far the opt-in settings of ``model`` move its outputs from the fp32 eager ``reference``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 17, 2, generator=gen) - 0.5
    vis = torch.rand(batch, 17, generator=gen) > 0.2
    vis[::4] = True  # a quarter of the poses fully seen (``lazy`` generates no tokens for them)
    fast, ref = model.predict(x, vis), reference.predict(x, vis)
    made = fast.q_s[:, 0] >= 0  # the poses whose tokens were generated
    same_s, same_d = (fast.q_s == ref.q_s)[made], (fast.q_d == ref.q_d)[made]
    out = {"compile": model.compile, "compile_active": model.compile_active, "lazy": model.lazy,
           "compile_options": model.compile_options if model.compile else None, "dtype": model.dtype,
           "random_input": {"samples": batch, "poses_with_tokens": int(made.sum()),
                            "tokens_equal_fraction": float(torch.cat([same_s.flatten(), same_d.flatten()]).float().mean()),
                            "poses_with_all_tokens_equal": float((same_s.all(1) & same_d.flatten(1).all(1)).float().mean()),
                            "mean_joint_distance_mm": float((fast.joints_3d - ref.joints_3d).norm(dim=-1).mean() * 1000)}}
    if run:
        from skeletok.metrics import mpjpe

        from .data import make_dataset
        from .protocols import _collect, _subsample

        data = Path(model.data_file)
        if data.is_file():
            keep = _subsample(len(make_dataset(data, split="test")), max_samples)
            test = _collect(data, "test", None, seed, keep)
            gt = test["sparse_3d"] * 1000.0
            fast = model.predict(test["sparse_2d"], test["sparse_visible"]).joints_3d * 1000.0
            ref = reference.predict(test["sparse_2d"], test["sparse_visible"]).joints_3d * 1000.0
            out["test"] = {"samples": int(gt.shape[0]), "mpjpe_mm": float(mpjpe(fast, gt)),
                           "mpjpe_mm_reference": float(mpjpe(ref, gt)),
                           "mpjpe_difference_mm": float(mpjpe(fast, gt) - mpjpe(ref, gt))}
    return out


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="time the trained models of this run directory")
    parser.add_argument("--preset", default="demo", help="model sizes when no --run is given (default: demo)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--peer", default=None, metavar="DIR",
                        help="also compare with DiffPose, same run, interleaved: DIR is an exported snapshot of the "
                             "GONGJIA0208/Diffpose repository (needs PyYAML)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the --peer comparison per batch size")
    parser.add_argument("--compile", action="store_true",
                        help="opt-in: torch.compile the whole argmax pipeline into one graph (falls back to eager)")
    parser.add_argument("--compile-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="inductor options over the default freezing=true cpp_wrapper=true (e.g. "
                             "cpp_wrapper=false: compiles much faster, slower at batch 1)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="with --preset: also time the prior's and the lifter's training step in N processes side "
                             "by side, 1/N of the threads each, against one process (default 0: off)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                        help="opt-in: bf16 autocast of decoding and lifting (generation stays fp32: the same tokens)")
    parser.add_argument("--lazy", action="store_true",
                        help="opt-in: generate tokens only for partly seen poses (HiPART lazy=True; same joints)")


def _run(args: argparse.Namespace) -> int:
    result = run_bench(run=args.run, preset=args.preset, batch_sizes=tuple(args.batch_sizes), min_time_s=args.min_time,
                       threads=args.threads, peer=args.peer, rounds=args.rounds, compile=args.compile,
                       compile_options=parse_options(args.compile_options, FROZEN), dtype=args.dtype, lazy=args.lazy,
                       jobs=args.jobs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart bench``."""
    add_command(subparsers, "bench", help="frames/s of each stage and the pipeline, as JSON",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
