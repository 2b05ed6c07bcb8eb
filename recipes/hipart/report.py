"""The HiPART evaluation report: ``report.json`` (schema below) and ``report.md`` (tables).

Schema of ``report.json`` (errors in millimetres, 2D errors in pixels of the dataset's cameras; "frames" counts
evaluated (frame, camera) samples):

- ``mpjpe_mm.{sparse_only,hipart,oracle}``, ``p_mpjpe_mm.{sparse_only,hipart,oracle}``: means over the
  evaluated split with the clean (unoccluded, noise-free) sparse 2D input;
- ``groups.{seen_action,unseen_action}.{frames, actions, mpjpe_mm.<method>, p_mpjpe_mm.<method>}``: the same
  split in two groups, ``seen_action`` when the sample's action label occurs in the file's ``train`` split, else
  ``unseen_action`` (derived from the file; the two ``frames`` add up to ``meta.samples``; the errors are
  ``null`` for an empty group);
- ``per_action.<action>.{frames, mpjpe_mm.<method>, p_mpjpe_mm.<method>}``;
- ``h36m_table`` (only on data whose actions include Human3.6M's 15, e.g. a ``from-h36m`` file; `h36m_table`):
  ``{actions, abbreviations, evaluated, mpjpe_mm.<method>.<action|Avg>, p_mpjpe_mm.<method>.<action|Avg>}``,
  the paper's per-action layout (Protocol #1 MPJPE, #2 P-MPJPE): one column per action, ``null`` for an action
  the split lacks, ``Avg`` the mean over the evaluated actions (as the papers average per-action errors);
- ``hypotheses.{clean,mask}.{samples, argmax, mean_of_n.<N>, best_of_n.<N>, per_hypothesis.<N>}`` for ``N`` in
  ``"1"``, ``"5"``, ``"20"``: HiPART on clean input and at mask ratio ``meta.hypothesis_mask`` (0.2), tokens sampled
  at ``meta.temperature``, on ``samples`` evenly spaced samples: MPJPE of the average pose of N hypotheses,
  per-sample minimum MPJPE over the N (averaged), MPJPE of single hypotheses (averaged over the N), and the argmax
  (one-answer) MPJPE on the same samples;
- ``occlusion.{mask,crop,mask_noisy,crop_noisy}.<ratio>.{sparse_only,hipart,oracle}``: MPJPE under the
  **keypoint-level proxies of the paper's image-level Table 1** (keypoints hidden or the keypoint box cut, not
  image pixels occluded and a detector re-run; ``<ratio>`` is a string such as ``"0.2"``; ``_noisy`` adds
  detector-like 2D noise); the oracle gets the true dense and fine levels with the occluded sparse input;
- ``tokenizer.{dense_2d_px, fine_2d_px, usage_sparse, usage_dense, perplexity_sparse, perplexity_dense}``:
  reconstruction error of ``decode(encode(x_f))`` per level and codebook statistics on the evaluated split;
- ``prior.{dense_2d_px, fine_2d_px, token_acc_sparse, token_acc_dense}``: the levels HiPART generates from
  the sparse pose alone, against ground truth;
- ``timings_s.<stage>``: wall-clock seconds of each training stage (from the run's checkpoints) and of the
  evaluation;
- ``meta``: run directory, dataset, split, number of samples, device, noise level, seed, ``temperature``,
  ``hypotheses`` (the N), ``hypothesis_samples``, ``hypothesis_mask``, ``occlusion_protocol`` (`OCCLUSION_PROTOCOL`)
  and the ``groups`` rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

__all__ = ["METHODS", "GROUPS", "OCCLUSION_PROTOCOL", "REQUIRED_KEYS", "H36M_ABBREVIATIONS", "h36m_table",
           "validate_report", "write_report", "format_markdown"]

METHODS = ("sparse_only", "hipart", "oracle")
GROUPS = ("seen_action", "unseen_action")
OCCLUSION_PROTOCOL = "keypoint-level proxy of the paper's image-level Table 1"
REQUIRED_KEYS = (
    [f"mpjpe_mm.{m}" for m in METHODS]
    + [f"p_mpjpe_mm.{m}" for m in METHODS]
    + [f"groups.{g}.{k}" for g in GROUPS for k in ("frames", "mpjpe_mm", "p_mpjpe_mm")]
    + ["occlusion.mask", "occlusion.crop"]
    + [f"hypotheses.{p}.{k}" for p in ("clean", "mask") for k in ("argmax", "mean_of_n", "best_of_n")]
    + [f"tokenizer.{k}" for k in ("dense_2d_px", "fine_2d_px", "usage_sparse", "usage_dense")]
    + ["timings_s", "meta.occlusion_protocol"]
)


def _get(report: Mapping[str, Any], dotted: str):
    node: Any = report
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` listing every required key missing from ``report`` (every method, the oracle
    included, at every ratio of the occlusion sweeps)."""
    missing = []
    for key in REQUIRED_KEYS:
        try:
            _get(report, key)
        except KeyError:
            missing.append(key)
    for protocol in ("mask", "crop"):
        for ratio, row in report.get("occlusion", {}).get(protocol, {}).items():
            for m in METHODS:
                if m not in row:
                    missing.append(f"occlusion.{protocol}.{ratio}.{m}")
    if missing:
        raise ValueError(f"report is missing keys: {missing}")


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if isinstance(x, (int, float)) else str(x)


# column heads of the per-action tables of Human3.6M papers, in their order (skeletok.data.sets.h36m.H36M_ACTIONS)
H36M_ABBREVIATIONS = {"Directions": "Dir.", "Discussion": "Disc.", "Eating": "Eat", "Greeting": "Greet",
                      "Phoning": "Phone", "Photo": "Photo", "Posing": "Pose", "Purchases": "Purch.", "Sitting": "Sit",
                      "SittingDown": "SitD.", "Smoking": "Smoke", "Waiting": "Wait", "WalkDog": "WalkD.",
                      "Walking": "Walk", "WalkTogether": "WalkT."}


def h36m_table(per_action: Mapping[str, Any], methods=METHODS) -> dict | None:
    """The paper's per-action table from a report's ``per_action`` section, or ``None`` when none of its actions
    is one of Human3.6M's 15.

    Args:
        per_action: ``{action: {"frames", "mpjpe_mm": {method: mm}, "p_mpjpe_mm": {method: mm}}}``.
        methods: the rows.

    Returns:
        ``{"actions", "abbreviations", "evaluated", "mpjpe_mm": {method: {action: mm or None, "Avg": mm}},
        "p_mpjpe_mm": {...}}``; ``Avg`` is the mean of the per-action errors over the evaluated actions.
    """
    actions = list(H36M_ABBREVIATIONS)
    evaluated = [a for a in actions if a in per_action and per_action[a].get("frames", 0) > 0]
    if not evaluated:
        return None
    table: dict[str, Any] = {"actions": actions, "abbreviations": [H36M_ABBREVIATIONS[a] for a in actions],
                             "evaluated": evaluated}
    for metric in ("mpjpe_mm", "p_mpjpe_mm"):
        table[metric] = {}
        for m in methods:
            row = {a: (per_action[a][metric][m] if a in evaluated else None) for a in actions}
            values = [row[a] for a in evaluated if row[a] is not None]
            row["Avg"] = sum(values) / len(values) if values else None
            table[metric][m] = row
    return table


def format_markdown(report: Mapping[str, Any]) -> str:
    """Render the report's tables as Markdown (the text printed by ``skeletok hipart evaluate``)."""
    lines = ["# HiPART evaluation", ""]
    meta = report.get("meta", {})
    if meta:
        lines += [", ".join(f"{k}: {v}" for k, v in meta.items()), ""]
    split = meta.get("split", "test")
    given = "detected 2D input, no occlusion" if meta.get("inputs") == "detections" else "clean 2D input"
    lines += [f"## 3D error (mm), {given}, {split} split", "", _row(["method", "MPJPE", "P-MPJPE"]),
              _row(["---"] * 3)]
    for m in METHODS:
        lines.append(_row([m, _fmt(report["mpjpe_mm"][m]), _fmt(report["p_mpjpe_mm"][m])]))
    groups = report.get("groups", {})
    if groups:
        lines += ["", "## 3D error (mm) by group: is the sample's action in the train split?", "",
                  _row(["group", "frames", *(f"MPJPE {m}" for m in METHODS), *(f"P-MPJPE {m}" for m in METHODS)]),
                  _row(["---"] * (2 + 2 * len(METHODS)))]
        for group, row in groups.items():
            lines.append(_row([group, row["frames"], *(_fmt(row["mpjpe_mm"][m]) for m in METHODS),
                               *(_fmt(row["p_mpjpe_mm"][m]) for m in METHODS)]))
    per_action = report.get("per_action", {})
    if per_action:
        lines += ["", "## MPJPE per action (mm)", "", _row(["action", "frames", *METHODS]), _row(["---"] * (2 + len(METHODS)))]
        for action, row in per_action.items():
            lines.append(_row([action, row["frames"], *(_fmt(row["mpjpe_mm"][m]) for m in METHODS)]))
    table = report.get("h36m_table")
    if table:
        heads = [*table["abbreviations"], "Avg"]
        for metric, title in (("mpjpe_mm", "Protocol #1, MPJPE"), ("p_mpjpe_mm", "Protocol #2, P-MPJPE")):
            lines += ["", f"## Human3.6M per action, {title} (mm; {len(table['evaluated'])} of 15 actions in the "
                          "split, Avg over those)", "", _row(["method", *heads]), _row(["---"] * (1 + len(heads)))]
            for m, row in table[metric].items():
                lines.append(_row([m, *(_fmt(row[a]) if row[a] is not None else "-" for a in [*table["actions"], "Avg"])]))
    for protocol, rows in report.get("hypotheses", {}).items():
        ns = list(rows["mean_of_n"])
        where = f"mask {meta.get('hypothesis_mask', '')}".strip() if protocol == "mask" else protocol
        lines += ["", f"## HiPART hypotheses: {where} (MPJPE, mm; temperature {meta.get('temperature', '?')}, "
                      f"{rows['samples']} samples)", "",
                  _row(["N", *ns]), _row(["---"] * (1 + len(ns))),
                  _row(["argmax (one answer)", *(_fmt(rows["argmax"]) for _ in ns)])]
        for key, label in (("mean_of_n", "mean of N (average pose)"), ("best_of_n", "best of N"),
                           ("per_hypothesis", "single hypothesis (average)")):
            if key in rows:
                lines.append(_row([label, *(_fmt(rows[key][n]) for n in ns)]))
    for protocol, rows in report.get("occlusion", {}).items():
        ratios = sorted(rows, key=float)
        lines += ["", f"## Occlusion, keypoint-level proxy of the paper's image-level Table 1: {protocol} (MPJPE, mm)",
                  "", _row(["method", *ratios]), _row(["---"] * (1 + len(ratios)))]
        for m in METHODS:
            if all(m in rows[r] for r in ratios):
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
