"""Evaluate a HiPART run: 3D error of HiPART, the sparse-only lifter and the oracle; occlusion sweeps;
tokenizer and prior quality; report files and pictures.

Launch::

    skeletok hipart evaluate --run runs/demo [--data other.npz] [--out DIR] [--max-samples N]
    python -m recipes.hipart.evaluate --run runs/demo

The run directory must hold ``tokenizer.pt``, ``prior.pt`` and ``lifter_{hipart,sparse_only,oracle}.pt``.
The dataset is the run's own (its test split) unless ``--data`` names another file built by
``skeletok data`` (then its test split; ``--split all`` uses every frame, e.g. for a converted mocap file).

Protocols (all on the same test samples, each with a fixed seed):

- clean: the projected sparse 2D pose, all joints visible;
- ``mask`` ratio r in 0, 0.2, ..., 0.8: exactly ``round(17 r)`` random joints hidden (Table 1, top);
- ``crop`` ratio r in 0, 0.1, ..., 0.4: a fraction r of the 2D box cut from a random side (Table 1, bottom);
- ``mask_noisy`` / ``crop_noisy``: the same with detector-like Gaussian 2D noise (``--noise-px``, 5 px by
  default, scaled per joint like COCO's OKS sigmas).

Writes ``report.json`` (schema in `recipes.hipart.report`), ``report.md`` and the pictures
``occlusion.png``, ``frame_levels.png``, ``codebook_similarity.png`` into ``--out`` (default: the run dir).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .centring import clean_centre
from .data import make_dataset, ordered_batches
from .distributed import pick_device
from .inference import HiPART, root_relative
from .launch import add_command, command_main
from .plots import plot_codebook_similarity, plot_frame_levels, plot_occlusion_curves
from .report import format_markdown, write_report
from .train_lifter import load_lifter
from skeletok.data.fileformat import load_dataset
from skeletok.data.occlusion import Occlusion
from skeletok.metrics import mean_error_2d, mpjpe, p_mpjpe
from skeletok.skeleton import H36M_17

__all__ = ["MASK_RATIOS", "CROP_RATIOS", "run_evaluation", "add_parser", "main"]

MASK_RATIOS = (0.0, 0.2, 0.4, 0.6, 0.8)
CROP_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4)
KEYS = ("sparse_2d", "sparse_visible", "sparse_2d_clean", "dense_2d", "fine_2d", "sparse_3d", "action", "camera")


def _collect(data: Path, split: str, occlusion: Occlusion | None, seed: int, keep: torch.Tensor | None) -> dict:
    dataset = make_dataset(data, split=split, occlusion=occlusion, seed=seed)
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in KEYS}
    for batch in ordered_batches(dataset, 1024):
        for k in KEYS:
            cols[k].append(batch[k])
    out = {k: torch.cat(v) for k, v in cols.items()}
    return out if keep is None else {k: v[keep] for k, v in out.items()}


def _subsample(n: int, max_samples: int) -> torch.Tensor | None:
    if max_samples <= 0 or n <= max_samples:
        return None
    return torch.linspace(0, n - 1, max_samples).round().long().unique()


@torch.inference_mode()
def _lift(model: HiPART, lifters: dict, batch: dict, batch_size: int) -> dict[str, torch.Tensor]:
    """3D predictions (metres) of every lifter for one protocol's samples, plus the generated levels."""
    preds = {m: [] for m in lifters}
    dense_all, fine_all = [], []
    dev = model.device
    for start in range(0, batch["sparse_2d"].shape[0], batch_size):
        sl = slice(start, start + batch_size)
        xs, vis = batch["sparse_2d"][sl].to(dev), batch["sparse_visible"][sl].to(dev)
        dense, fine, _, _ = model.densify(xs, vis)
        dense_all.append(dense.cpu())
        fine_all.append(fine.cpu())
        inputs = {
            "sparse_only": ([xs], [vis]),
            "hipart": ([xs, dense, fine], [vis, None, None]),
            "oracle": ([xs, batch["dense_2d"][sl].to(dev), batch["fine_2d"][sl].to(dev)], [vis, None, None]),
        }
        for mode, lifter in lifters.items():
            preds[mode].append(root_relative(lifter(*inputs[mode]).float().cpu()))
    out = {m: torch.cat(v) for m, v in preds.items()}
    out["dense_hat"], out["fine_hat"] = torch.cat(dense_all), torch.cat(fine_all)
    return out


def _px(err_norm: torch.Tensor, widths: torch.Tensor) -> float:
    """Normalised-unit distances -> pixels (``u = x / w * 2 - 1``, so 1 unit = w / 2 px)."""
    return float((err_norm * widths / 2).mean())


def run_evaluation(run_dir: str | Path, *, data: str | Path | None = None, out: str | Path | None = None,
                   split: str = "test", max_samples: int = 2000, noise_px: float = 5.0, seed: int = 0,
                   batch_size: int = 512, device: str = "auto", pictures: bool = True,
                   progress: bool = True) -> dict:
    """Evaluate the run in ``run_dir`` and write the report; returns the report dict (see `recipes.hipart.report`).

    Args:
        run_dir: directory with the five model files of a HiPART run.
        data: dataset file; default: the one the run's lifters were trained on.
        out: output directory; default ``run_dir``.
        split: ``test``, ``train`` or ``all``.
        max_samples: evaluate at most this many (frame, camera) samples, evenly spaced (0 = all).
        noise_px: detector-like noise of the ``*_noisy`` protocols, pixels.
        seed: seed of every occlusion draw.
        batch_size: poses per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        pictures: also write the PNG pictures.
        progress: print progress lines.

    Raises:
        FileNotFoundError: a model file or the dataset is missing.
    """
    tic = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir
    dev = pick_device(device)
    model = HiPART.load(run_dir, device=dev)
    lifters = {"hipart": model.lifter}
    for mode in ("sparse_only", "oracle"):
        path = run_dir / f"lifter_{mode}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; train it with `skeletok hipart train-lifter mode={mode}`")
        lifters[mode] = load_lifter(path)[0].to(dev).eval()
    data = Path(data if data is not None else model.data_file)
    if not data.is_file():
        raise FileNotFoundError(f"dataset {data} not found (pass --data, or rebuild it with `skeletok data build`)")
    arrays = load_dataset(data)
    action_names = [str(a) for a in arrays["action_names"]]
    widths = torch.as_tensor(np.asarray(arrays["cam_size"])[:, 0], dtype=torch.float32)

    n_all = len(make_dataset(data, split=split))
    keep = _subsample(n_all, max_samples)
    clean = _collect(data, split, None, seed, keep)
    n = clean["sparse_2d"].shape[0]
    w = widths[clean["camera"]][:, None]
    gt_mm = clean["sparse_3d"] * 1000.0
    say = (lambda msg: print(f"[evaluate] {msg}", flush=True)) if progress else (lambda msg: None)
    say(f"{n} test samples of {data}")

    pred = _lift(model, lifters, clean, batch_size)
    report: dict = {"mpjpe_mm": {}, "p_mpjpe_mm": {}, "per_action": {}, "occlusion": {}}
    for mode in ("sparse_only", "hipart", "oracle"):
        report["mpjpe_mm"][mode] = float(mpjpe(pred[mode] * 1000.0, gt_mm))
        report["p_mpjpe_mm"][mode] = float(p_mpjpe(pred[mode] * 1000.0, gt_mm))
    for a in clean["action"].unique().tolist():
        sel = clean["action"] == a
        report["per_action"][action_names[a]] = {
            "frames": int(sel.sum()),
            "mpjpe_mm": {m: float(mpjpe(pred[m][sel] * 1000.0, gt_mm[sel])) for m in lifters},
            "p_mpjpe_mm": {m: float(p_mpjpe(pred[m][sel] * 1000.0, gt_mm[sel])) for m in lifters},
        }

    tok = model.tokenizer
    with torch.inference_mode():
        centre = clean_centre(clean["sparse_2d_clean"])
        q_s, q_d = tok.encode((clean["fine_2d"] - centre).to(dev))
        dense_rec, fine_rec = (x.cpu() + centre for x in tok.decode(q_s, q_d))
        _, _, q_s_gen, q_d_gen = model.densify(clean["sparse_2d"].to(dev), clean["sparse_visible"].to(dev))
    report["tokenizer"] = {
        "dense_2d_px": _px(mean_error_2d(dense_rec, clean["dense_2d"], reduction="none")[:, None], w),
        "fine_2d_px": _px(mean_error_2d(fine_rec, clean["fine_2d"], reduction="none")[:, None], w),
        "usage_sparse": tok.codebook.usage(0, q_s),
        "usage_dense": tok.codebook.usage(1, q_d),
        "perplexity_sparse": tok.codebook.perplexity(0, q_s),
        "perplexity_dense": tok.codebook.perplexity(1, q_d),
    }
    report["prior"] = {
        "dense_2d_px": _px(mean_error_2d(pred["dense_hat"], clean["dense_2d"], reduction="none")[:, None], w),
        "fine_2d_px": _px(mean_error_2d(pred["fine_hat"], clean["fine_2d"], reduction="none")[:, None], w),
        "token_acc_sparse": float((q_s_gen.cpu() == q_s.cpu()).float().mean()),
        "token_acc_dense": float((q_d_gen.cpu() == q_d.cpu()).float().mean()),
    }

    protocols = {"mask": MASK_RATIOS, "crop": CROP_RATIOS}
    shown = None
    for noisy in (False, True):
        for protocol, ratios in protocols.items():
            key = f"{protocol}_noisy" if noisy else protocol
            report["occlusion"][key] = {}
            for r in ratios:
                occ = Occlusion(mask_ratio=r if protocol == "mask" else 0.0, crop_ratio=r if protocol == "crop" else 0.0,
                                noise_px=noise_px if noisy else 0.0, probability=1.0)
                batch = _collect(data, split, occ, seed, keep)
                p = _lift(model, {m: lifters[m] for m in ("sparse_only", "hipart")}, batch, batch_size)
                report["occlusion"][key][str(r)] = {m: float(mpjpe(p[m] * 1000.0, gt_mm)) for m in ("sparse_only", "hipart")}
                if protocol == "mask" and not noisy and abs(r - 0.4) < 1e-9:
                    shown = (batch, p)
            say(f"{key}: " + ", ".join(f"{r}: {v['sparse_only']:.1f}/{v['hipart']:.1f}"
                                       for r, v in report["occlusion"][key].items()) + " (sparse_only/hipart mm)")

    timings_path = run_dir / "timings.json"
    report["timings_s"] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    report["timings_s"]["evaluate"] = time.perf_counter() - tic
    report["meta"] = {"run": str(run_dir), "data": str(data), "split": split, "samples": n, "device": str(dev),
                      "noise_px": noise_px, "seed": seed}
    if pictures:
        out.mkdir(parents=True, exist_ok=True)
        report["pictures"] = [str(plot_occlusion_curves(report["occlusion"], out / "occlusion.png"))]
        if shown is not None:
            batch, p = shown
            i = int(torch.argmax((~batch["sparse_visible"]).sum(1)))
            report["pictures"].append(str(plot_frame_levels(
                sparse_2d=batch["sparse_2d"][i].numpy(), dense_2d=p["dense_hat"][i].numpy(),
                fine_2d=p["fine_hat"][i].numpy(), dense_2d_gt=batch["dense_2d"][i].numpy(),
                fine_2d_gt=batch["fine_2d"][i].numpy(), visible=batch["sparse_visible"][i].numpy(),
                pred_3d=p["hipart"][i].numpy() * 1000.0, gt_3d=gt_mm[i].numpy(), parents=H36M_17.parents,
                out=out / "frame_levels.png", title=f"mask 0.4, {action_names[int(batch['action'][i])]}")))
        report["pictures"].append(str(plot_codebook_similarity(
            tok.codebook.codes(0).detach().cpu().numpy(), tok.codebook.codes(1).detach().cpu().numpy(),
            out / "codebook_similarity.png")))
    write_report(report, out)
    say(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return report


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default="runs/demo", help="run directory (default: runs/demo)")
    parser.add_argument("--data", default=None, help="dataset .npz (default: the run's own)")
    parser.add_argument("--out", default=None, help="output directory (default: the run directory)")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"))
    parser.add_argument("--max-samples", type=int, default=2000, help="cap on evaluated samples (0 = all)")
    parser.add_argument("--noise-px", type=float, default=5.0, help="2D noise of the *_noisy protocols, pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")


def _run(args: argparse.Namespace) -> int:
    report = run_evaluation(args.run, data=args.data, out=args.out, split=args.split, max_samples=args.max_samples,
                            noise_px=args.noise_px, seed=args.seed, device=args.device)
    print(format_markdown(report))
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart evaluate``."""
    add_command(subparsers, "evaluate", help="evaluate a run: MPJPE, occlusion sweeps, report",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
