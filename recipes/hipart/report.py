"""The HiPART evaluation report: ``report.json`` (schema below) and ``report.md`` (tables).

Schema of ``report.json`` (errors in millimetres, 2D errors in pixels of the dataset's cameras):

- ``mpjpe_mm.{sparse_only,hipart,oracle}``, ``p_mpjpe_mm.{sparse_only,hipart,oracle}``: test-set means
  with the clean (unoccluded, noise-free) sparse 2D input;
- ``per_action.<action>.{frames, mpjpe_mm.<method>, p_mpjpe_mm.<method>}``;
- ``occlusion.{mask,crop,mask_noisy,crop_noisy}.<ratio>.{sparse_only,hipart}``: MPJPE under the Table 1
  protocols (``<ratio>`` is a string such as ``"0.2"``; ``_noisy`` adds detector-like 2D noise);
- ``tokenizer.{dense_2d_px, fine_2d_px, usage_sparse, usage_dense, perplexity_sparse, perplexity_dense}``:
  reconstruction error of ``decode(encode(x_f))`` per level and codebook statistics on the test set;
- ``prior.{dense_2d_px, fine_2d_px, token_acc_sparse, token_acc_dense}``: the levels HiPART generates from
  the sparse pose alone, against ground truth;
- ``timings_s.<stage>``: wall-clock seconds of each training stage (from the run's checkpoints) and of the
  evaluation;
- ``meta``: run directory, dataset, number of test samples, device, noise level, seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

__all__ = ["REQUIRED_KEYS", "validate_report", "write_report", "format_markdown"]

METHODS = ("sparse_only", "hipart", "oracle")
REQUIRED_KEYS = (
    [f"mpjpe_mm.{m}" for m in METHODS]
    + [f"p_mpjpe_mm.{m}" for m in METHODS]
    + ["occlusion.mask", "occlusion.crop"]
    + [f"tokenizer.{k}" for k in ("dense_2d_px", "fine_2d_px", "usage_sparse", "usage_dense")]
    + ["timings_s"]
)


def _get(report: Mapping[str, Any], dotted: str):
    node: Any = report
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` listing every required key missing from ``report``."""
    missing = []
    for key in REQUIRED_KEYS:
        try:
            _get(report, key)
        except KeyError:
            missing.append(key)
    for protocol in ("mask", "crop"):
        for ratio, row in report.get("occlusion", {}).get(protocol, {}).items():
            for m in ("sparse_only", "hipart"):
                if m not in row:
                    missing.append(f"occlusion.{protocol}.{ratio}.{m}")
    if missing:
        raise ValueError(f"report is missing keys: {missing}")


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _fmt(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else str(x)


def format_markdown(report: Mapping[str, Any]) -> str:
    """Render the report's tables as Markdown (the text printed by ``skeletok hipart evaluate``)."""
    lines = ["# HiPART evaluation", ""]
    meta = report.get("meta", {})
    if meta:
        lines += [", ".join(f"{k}: {v}" for k, v in meta.items()), ""]
    lines += ["## 3D error (mm), clean 2D input", "", _row(["method", "MPJPE", "P-MPJPE"]), _row(["---"] * 3)]
    for m in METHODS:
        lines.append(_row([m, _fmt(report["mpjpe_mm"][m]), _fmt(report["p_mpjpe_mm"][m])]))
    per_action = report.get("per_action", {})
    if per_action:
        lines += ["", "## MPJPE per action (mm)", "", _row(["action", "frames", *METHODS]), _row(["---"] * (2 + len(METHODS)))]
        for action, row in per_action.items():
            lines.append(_row([action, row["frames"], *(_fmt(row["mpjpe_mm"][m]) for m in METHODS)]))
    for protocol, rows in report.get("occlusion", {}).items():
        ratios = sorted(rows, key=float)
        lines += ["", f"## Occlusion: {protocol} (MPJPE, mm)", "", _row(["method", *ratios]), _row(["---"] * (1 + len(ratios)))]
        for m in ("sparse_only", "hipart"):
            lines.append(_row([m, *(_fmt(rows[r][m]) for r in ratios)]))
        gain = [rows[r]["sparse_only"] - rows[r]["hipart"] for r in ratios]
        lines.append(_row(["gain (sparse_only - hipart)", *(_fmt(g) for g in gain)]))
    for section in ("tokenizer", "prior"):
        if section in report:
            lines += ["", f"## {section}", "", _row(["metric", "value"]), _row(["---", "---"])]
            for k, v in report[section].items():
                lines.append(_row([k, f"{v:.3f}" if isinstance(v, float) else v]))
    lines += ["", "## Timings (s)", "", _row(["stage", "seconds"]), _row(["---", "---"])]
    for k, v in report.get("timings_s", {}).items():
        lines.append(_row([k, _fmt(v)]))
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Validate and write ``report.json`` and ``report.md`` into ``out_dir``; returns both paths."""
    validate_report(report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path.write_text(format_markdown(report))
    return json_path, md_path
