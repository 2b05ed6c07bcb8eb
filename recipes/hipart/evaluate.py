"""Evaluate a HiPART run: 3D error, action groups, sampled hypotheses, keypoint-level occlusion sweeps.

3D error of HiPART, the sparse-only lifter and the oracle; seen/unseen-action groups; mean-of-N and best-of-N
of sampled hypotheses; keypoint-level occlusion sweeps (proxies of the paper's Table 1); tokenizer and prior
quality; report files and pictures.

Launch::

    skeletok hipart evaluate --run runs/demo [--data other.npz] [--split val] [--out DIR] [--max-samples N]
        [--inputs ground_truth|detections] [--det-min-score S]
    python -m recipes.hipart.evaluate --run runs/demo

The run directory must hold ``tokenizer.pt``, ``prior.pt`` and ``lifter_{hipart,sparse_only,oracle}.pt``.
The dataset is the run's own unless ``--data`` names another file built by ``skeletok data``. ``--split``
picks its frames: ``val`` to choose settings, ``test`` (the default) read once at the end, ``train``, or ``all``
(every frame, e.g. for a converted mocap file). A split with no frames is an error naming the splits present.
``--inputs detections`` feeds the file's 2D detections (``det_sparse``, e.g. Human3.6M's CPN) instead of the
projected joints to every protocol below (the "projected" pose is then the detected one); keypoints the detector
missed (or scored below ``--det-min-score``) are hidden in every protocol, before the protocol's own occlusion.

Protocols (`recipes.hipart.protocols`; all on the same samples, each with a fixed seed). The occlusion sweeps are
**keypoint-level proxies of the paper's image-level Table 1**: the paper occludes image pixels and re-runs a 2D
detector; here the projected keypoints are hidden (mask) or the keypoint box is cut (crop), so a hidden joint is
known to be hidden and the visible ones keep their exact (or ``_noisy``: Gaussian-perturbed) positions.

- clean: the projected sparse 2D pose, all joints visible;
- ``mask`` ratio r in 0, 0.2, ..., 0.8: exactly ``round(17 r)`` random joints hidden (proxy of Table 1, top);
- ``crop`` ratio r in 0, 0.1, ..., 0.4: a fraction r of the 2D keypoint box cut from a random side (proxy of
  Table 1, bottom);
- ``mask_noisy`` / ``crop_noisy``: the same with detector-like Gaussian 2D noise (``--noise-px``, 5 px by
  default, scaled per joint like COCO's OKS sigmas).

All three lifters are scored under every protocol; the oracle gets the true dense and fine levels with the
occluded sparse input (a bound on what better generated levels could give).

Groups: each sample is ``seen_action`` when its action label occurs in the same file's ``train`` split, else
``unseen_action`` (no file key needed; a file without a train split has only ``unseen_action``).

Hypotheses (`recipes.hipart.hypotheses`): on clean input (``clean``) and at mask 0.2 (``mask``, `HYPOTHESIS_MASK`),
HiPART draws N = 1, 5, 20 hypotheses per sample (tokens sampled from the prior at ``--temperature``, seeded by
``--seed``; each densified and lifted by the hipart lifter) on ``--hypothesis-samples`` evenly spaced samples of the
evaluated ones.
``mean_of_n``: MPJPE of the average 3D pose of the N hypotheses; ``best_of_n``: per sample the smallest MPJPE among
the N, averaged; ``per_hypothesis``: the MPJPE of single hypotheses, averaged over the N. At temperature 0 every
hypothesis is the argmax one.

Writes ``report.json`` (schema in `recipes.hipart.report`), ``report.md`` and the pictures
``occlusion.png``, ``frame_levels.png``, ``codebook_similarity.png`` into ``--out`` (default: the run dir).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .centring import clean_centre
from .data import make_dataset
from .distributed import pick_device
from .hypotheses import (HYPOTHESES, HYPOTHESIS_MASK, hypothesis_scores, sample_hypotheses,
                         score_hypotheses)
from .inference import HiPART
from .launch import add_command, command_main
from .plots import plot_codebook_similarity, plot_frame_levels, plot_occlusion_curves
from .protocols import CROP_RATIOS, MASK_RATIOS, _collect, _lift, _subsample, occlusion_sweep
from .report import GROUPS, METHODS, OCCLUSION_PROTOCOL, format_markdown, h36m_table, write_report
from .train_lifter import load_lifter
from skeletok.data.sets.dataset import SPLITS
from skeletok.data.sets.fileformat import SPLIT_CODES, load_dataset
from skeletok.metrics import mean_error_2d, mpjpe, p_mpjpe
from skeletok.skeleton import H36M_17

__all__ = ["action_groups", "run_evaluation", "add_parser", "main"]
# also importable from here, as before the split (documented in their own modules): MASK_RATIOS, CROP_RATIOS,
# HYPOTHESES, HYPOTHESIS_MASK, sample_hypotheses, score_hypotheses, _collect, _lift, _subsample


def action_groups(arrays, actions: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"seen_action": mask, "unseen_action": mask}`` over samples whose action labels are ``actions``:
    seen when the label occurs among the frames of the file's ``train`` split."""
    train_actions = np.unique(np.asarray(arrays["action"])[np.asarray(arrays["split"]) == SPLIT_CODES["train"]])
    seen = torch.as_tensor(np.isin(actions.numpy(), train_actions))
    return {"seen_action": seen, "unseen_action": ~seen}


def _errors(pred: dict, gt_mm: torch.Tensor, sel: torch.Tensor | None = None) -> dict:
    """``{"mpjpe_mm": {method: mm}, "p_mpjpe_mm": {...}}`` of every method in ``pred`` (on ``sel`` if given;
    ``None`` values when ``sel`` selects nothing)."""
    out: dict[str, dict] = {"mpjpe_mm": {}, "p_mpjpe_mm": {}}
    for m in METHODS:
        p, g = (pred[m], gt_mm) if sel is None else (pred[m][sel], gt_mm[sel])
        empty = g.shape[0] == 0
        out["mpjpe_mm"][m] = None if empty else float(mpjpe(p * 1000.0, g))
        out["p_mpjpe_mm"][m] = None if empty else float(p_mpjpe(p * 1000.0, g))
    return out


def _px(err_norm: torch.Tensor, widths: torch.Tensor) -> float:
    """Normalised-unit distances -> pixels (``u = x / w * 2 - 1``, so 1 unit = w / 2 px)."""
    return float((err_norm * widths / 2).mean())


def run_evaluation(run_dir: str | Path, *, data: str | Path | None = None, out: str | Path | None = None,
                   split: str = "test", max_samples: int = 2000, noise_px: float = 5.0, seed: int = 0,
                   temperature: float = 1.0, hypothesis_samples: int = 250, batch_size: int = 512,
                   device: str = "auto", pictures: bool = True, progress: bool = True,
                   inputs: str = "ground_truth", hide_levels: bool = False, det_min_score: float = 0.0,
                   level_min_visible: int | None = None) -> dict:
    """Evaluate the run in ``run_dir`` and write the report; returns the report dict (see `recipes.hipart.report`).

    Args:
        run_dir: directory with the five model files of a HiPART run.
        data: dataset file; default: the one the run's lifters were trained on.
        out: output directory; default ``run_dir``.
        split: ``val``, ``test``, ``train`` or ``all``.
        max_samples: evaluate at most this many (frame, camera) samples, evenly spaced (0 = all).
        noise_px: detector-like noise of the ``*_noisy`` protocols, pixels.
        seed: seed of every occlusion draw and of the hypotheses' token sampling.
        temperature: sampling temperature of the hypotheses (0 = argmax: all hypotheses alike).
        hypothesis_samples: samples (evenly spaced among the evaluated ones) that get the hypotheses
            (0 = all); the pass costs ``2 * 20`` densify-and-lift rows per sample.
        batch_size: poses per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        pictures: also write the PNG pictures.
        progress: print progress lines.
        inputs: the 2D the models read: ``ground_truth`` (projected joints) or ``detections`` (the file's
            ``det_sparse``, e.g. Human3.6M's CPN); every protocol (clean, occlusion sweeps, hypotheses) occludes
            that input. 3D targets and the tokenizer's reference levels stay ground truth. Recorded in
            ``report["meta"]["inputs"]``.
        det_min_score: with ``inputs=detections``, detected keypoints scoring below this are hidden, as missed
            ones always are (hidden = missed, low-scored or occluded by the protocol); recorded in
            ``report["meta"]``. Use the value the lifters were trained with (their configs' ``det_min_score``).
        hide_levels: ablation: the HiPART lifter lifts with the generated dense and fine levels hidden
            (`recipes.hipart.inference.HiPART.densify_and_lift`); recorded in ``report["meta"]``.
        level_min_visible: ``None`` (default): the HiPART lifter's own setting (`LifterConfig.level_min_visible`);
            else lift the samples that see fewer joints than this with their generated levels hidden (to choose
            the setting on validation); recorded in ``report["meta"]``.

    Raises:
        FileNotFoundError: a model file or the dataset is missing.
        ValueError: a model file is unreadable or foreign, the split holds no frames, or a bad argument.
    """
    tic = time.perf_counter()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir
    dev = pick_device(device)
    model = HiPART.load(run_dir, device=dev)
    if level_min_visible is not None:
        model.level_min_visible = level_min_visible  # checked by HiPART
    lifters = {"hipart": model.lifter}
    for mode in ("sparse_only", "oracle"):
        path = run_dir / f"lifter_{mode}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; train it with `skeletok hipart train-lifter mode={mode}`")
        lifters[mode] = load_lifter(path)[0].to(dev).eval()
    lifters = {m: lifters[m] for m in METHODS}
    data = Path(data if data is not None else model.data_file)
    if not data.is_file():
        raise FileNotFoundError(f"dataset {data} not found (pass --data, or rebuild it with `skeletok data build`)")
    arrays = load_dataset(data)
    action_names = [str(a) for a in arrays["action_names"]]
    widths = torch.as_tensor(np.asarray(arrays["cam_size"])[:, 0], dtype=torch.float32)

    # a ValueError naming the splits present when the split is empty
    n_all = len(make_dataset(data, split=split, inputs=inputs, det_min_score=det_min_score))
    keep = _subsample(n_all, max_samples)
    clean = _collect(data, split, None, seed, keep, inputs, det_min_score)
    n = clean["sparse_2d"].shape[0]
    w = widths[clean["camera"]][:, None]
    gt_mm = clean["sparse_3d"] * 1000.0
    say = (lambda msg: print(f"[evaluate] {msg}", flush=True)) if progress else (lambda msg: None)
    say(f"{n} {split} samples of {data}, inputs: {inputs.replace('_', ' ')}")

    pred = _lift(model, lifters, clean, batch_size, hide_levels)
    report: dict = {**_errors(pred, gt_mm), "groups": {}, "per_action": {}, "hypotheses": {}, "occlusion": {}}
    for group, sel in action_groups(arrays, clean["action"]).items():
        report["groups"][group] = {"frames": int(sel.sum()),
                                   "actions": sorted({action_names[a] for a in clean["action"][sel].tolist()}),
                                   **_errors(pred, gt_mm, sel)}
    for a in clean["action"].unique().tolist():
        sel = clean["action"] == a
        report["per_action"][action_names[a]] = {"frames": int(sel.sum()), **_errors(pred, gt_mm, sel)}
    table = h36m_table(report["per_action"])
    if table is not None:  # Human3.6M-shaped data: the paper's per-action layout
        report["h36m_table"] = table

    tok = model.tokenizer
    with torch.inference_mode():
        centre = clean_centre(clean["sparse_2d_clean"])
        q_s, q_d = tok.encode((clean["fine_2d"] - centre).to(dev))
        dense_rec, fine_rec = (x.cpu() + centre for x in tok.decode(q_s, q_d))
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
        "token_acc_sparse": float((pred["q_s"] == q_s.cpu()).float().mean()),
        "token_acc_dense": float((pred["q_d"] == q_d.cpu()).float().mean()),
    }

    report["occlusion"], shown = occlusion_sweep(model, lifters, data, split, keep, gt_mm, shown_mask=HYPOTHESIS_MASK,
                                                 noise_px=noise_px, seed=seed, inputs=inputs,
                                                 det_min_score=det_min_score, batch_size=batch_size,
                                                 hide_levels=hide_levels, say=say)

    hyp_keep = _subsample(n, hypothesis_samples)
    hyp_sel = torch.arange(n) if hyp_keep is None else hyp_keep
    for name, (batch, p) in {"clean": (clean, pred), "mask": shown}.items():
        report["hypotheses"][name] = hypothesis_scores(model, batch, p, gt_mm, hyp_sel, temperature=temperature,
                                                       seed=seed, batch_size=batch_size, hide_levels=hide_levels)
        scores = report["hypotheses"][name]
        say(f"hypotheses, {name}: " + ", ".join(
            f"N={k}: mean {scores['mean_of_n'][k]:.1f} best {scores['best_of_n'][k]:.1f}" for k in scores["mean_of_n"])
            + f" mm (argmax {scores['argmax']:.1f})")

    timings_path = run_dir / "timings.json"
    report["timings_s"] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    report["timings_s"]["evaluate"] = time.perf_counter() - tic
    report["meta"] = {"run": str(run_dir), "data": str(data), "split": split, "inputs": inputs,
                      **({"det_min_score": float(det_min_score)} if inputs == "detections" else {}), "samples": n,
                      "hide_levels": bool(hide_levels), "level_min_visible": model.level_min_visible,
                      "gate_levels": model.gate is not None, "guess_min_logp": model.guess_min_logp,
                      "device": str(dev),
                      "noise_px": noise_px, "seed": seed, "temperature": float(temperature),
                      "hypotheses": list(HYPOTHESES), "hypothesis_samples": int(hyp_sel.numel()),
                      "hypothesis_mask": HYPOTHESIS_MASK,
                      "occlusion_protocol": OCCLUSION_PROTOCOL,
                      "groups": "seen_action: the sample's action label occurs in the file's train split; "
                                "else unseen_action"}
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
                out=out / "frame_levels.png",
                title=f"mask {HYPOTHESIS_MASK}, {action_names[int(batch['action'][i])]}")))
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
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="frames to evaluate: val (to choose settings), test (default; read once at the end), "
                             "train, or all")
    parser.add_argument("--max-samples", type=int, default=2000, help="cap on evaluated samples (0 = all)")
    parser.add_argument("--noise-px", type=float, default=5.0, help="2D noise of the *_noisy protocols, pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the occlusion draws and of the hypotheses")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="token sampling temperature of the N = 1, 5, 20 hypotheses (default 1.0; 0 = argmax)")
    parser.add_argument("--hypothesis-samples", type=int, default=250,
                        help="samples that get the hypotheses, evenly spaced among the evaluated ones (0 = all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--inputs", choices=("ground_truth", "detections"), default="ground_truth",
                        help="2D the models read: ground_truth (projected joints, default) or detections (the "
                        "file's det_sparse, e.g. Human3.6M's CPN)")
    parser.add_argument("--det-min-score", type=float, default=0.0,
                        help="with --inputs detections: hide detected keypoints scoring below this, as missed ones "
                        "always are (default 0: the misses only; use the lifters' det_min_score)")
    parser.add_argument("--hide-levels", action="store_true",
                        help="ablation: the HiPART lifter lifts with its generated dense/fine levels hidden (what it "
                        "does from the sparse pose alone); the prior's 2D errors are still reported")
    parser.add_argument("--level-min-visible", type=int, default=None,
                        help="hide the generated levels of samples that see fewer joints than this (default: the "
                        "HiPART lifter's own level_min_visible; choose it on val)")


def _run(args: argparse.Namespace) -> int:
    report = run_evaluation(args.run, data=args.data, out=args.out, split=args.split, max_samples=args.max_samples,
                            noise_px=args.noise_px, seed=args.seed, temperature=args.temperature,
                            hypothesis_samples=args.hypothesis_samples, device=args.device, inputs=args.inputs,
                            hide_levels=args.hide_levels, det_min_score=args.det_min_score,
                            level_min_visible=args.level_min_visible)
    print(format_markdown(report))
    return 0


def add_parser(subparsers) -> None:
    """Register ``skeletok hipart evaluate``."""
    add_command(subparsers, "evaluate", help="evaluate a run: MPJPE, groups, hypotheses, occlusion sweeps, report",
                description=__doc__.splitlines()[0], add_arguments=_add_arguments, run=_run)


def main(argv: list[str] | None = None) -> int:
    return command_main(__doc__.splitlines()[0], _add_arguments, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
