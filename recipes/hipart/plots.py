"""Pictures for the HiPART evaluation report (matplotlib, Agg backend, PNG files).

Shapes: ``j`` points, ``c`` coordinates; 2D in pixels or normalised units (as labelled), 3D in millimetres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_occlusion_curves", "plot_frame_levels", "plot_codebook_similarity"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_occlusion_curves(occlusion: Mapping[str, Mapping[str, Mapping[str, float]]], out: str | Path) -> Path:
    """MPJPE (mm) against occlusion ratio, one panel per protocol (``mask``, ``crop``: keypoint-level proxies of
    the paper's image-level Table 1), one line per method (the oracle included when the report has it).

    Args:
        occlusion: ``report["occlusion"]``: protocol -> ratio (as str) -> method -> MPJPE in mm. Protocols
            named ``<name>_noisy`` are drawn dashed in the panel of ``<name>``.
        out: PNG path.

    Returns:
        The written path.
    """
    plt = _pyplot()
    bases = [p for p in occlusion if not p.endswith("_noisy")]
    fig, axes = plt.subplots(1, len(bases), figsize=(5 * len(bases), 4), squeeze=False)
    for ax, base in zip(axes[0], bases):
        for protocol, style in ((base, "-"), (f"{base}_noisy", "--")):
            if protocol not in occlusion:
                continue
            ratios = sorted(occlusion[protocol], key=float)
            methods = sorted({m for r in ratios for m in occlusion[protocol][r]})
            for method in methods:
                ys = [occlusion[protocol][r][method] for r in ratios]
                label = method + (" (+2D noise)" if protocol.endswith("_noisy") else "")
                ax.plot([float(r) for r in ratios], ys, style, marker="o", label=label)
        ax.set_xlabel(f"{base} ratio")
        ax.set_ylabel("MPJPE (mm)")
        ax.set_title(f"{base} (keypoint-level proxy of Table 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _bones(ax, points: np.ndarray, parents: Sequence[int], color: str, dims: int) -> None:
    for child, parent in enumerate(parents):
        if parent < 0:
            continue
        seg = points[[parent, child]]
        if dims == 2:
            ax.plot(seg[:, 0], seg[:, 1], color=color, lw=2)
        else:
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color, lw=2)


def plot_frame_levels(
    *,
    sparse_2d: np.ndarray,
    dense_2d: np.ndarray,
    fine_2d: np.ndarray,
    dense_2d_gt: np.ndarray,
    fine_2d_gt: np.ndarray,
    visible: np.ndarray,
    pred_3d: np.ndarray,
    gt_3d: np.ndarray,
    parents: Sequence[int],
    out: str | Path,
    title: str = "",
) -> Path:
    """One frame: the three 2D levels (generated against ground truth) and predicted against true 3D.

    Args:
        sparse_2d: ``(17, 2)`` input sparse pose (normalised units).
        dense_2d: ``(48, 2)`` generated dense level.
        fine_2d: ``(96, 2)`` generated fine level.
        dense_2d_gt: ``(48, 2)`` ground-truth dense level.
        fine_2d_gt: ``(96, 2)`` ground-truth fine level.
        visible: ``(17,)`` bool, which sparse joints the model saw.
        pred_3d: ``(17, 3)`` predicted joints, camera frame, root-relative, millimetres.
        gt_3d: ``(17, 3)`` true joints, same frame and unit.
        parents: parent index per sparse joint (-1 root).
        out: PNG path.
        title: figure title.
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(13, 4.5))
    ax = fig.add_subplot(1, 3, 1)
    _bones(ax, sparse_2d, parents, "0.6", 2)
    ax.scatter(*sparse_2d[visible].T, c="k", s=25, label="sparse (seen)")
    ax.scatter(*sparse_2d[~visible].T, facecolors="none", edgecolors="r", s=40, label="sparse (hidden)")
    ax.scatter(*dense_2d_gt.T, c="tab:green", s=10, alpha=0.4, label="dense GT")
    ax.scatter(*dense_2d.T, c="tab:green", marker="x", s=18, label="dense generated")
    ax.set_title("sparse + dense (48)")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 2)
    ax.scatter(*fine_2d_gt.T, c="tab:blue", s=8, alpha=0.4, label="fine GT")
    ax.scatter(*fine_2d.T, c="tab:blue", marker="x", s=14, label="fine generated")
    ax.set_title("fine (96)")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 3, projection="3d")
    # camera frame (x right, y down, z forward) shown with z as depth and -y up
    view = lambda p: np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1)  # noqa: E731
    _bones(ax, view(gt_3d), parents, "k", 3)
    _bones(ax, view(pred_3d), parents, "tab:red", 3)
    ax.set_title("3D: truth (black) vs HiPART (red), mm")
    lim = np.abs(np.concatenate([gt_3d, pred_3d])).max()
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_zlim(-lim, lim)
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def plot_codebook_similarity(
    sparse_codes: np.ndarray, dense_codes: np.ndarray, out: str | Path, *, num: int = 100, seed: int = 0
) -> Path:
    """Cosine-similarity maps of randomly selected codes (the supplementary's Fig. 6).

    Args:
        sparse_codes: ``(k_s, d)`` sparse code table.
        dense_codes: ``(k_d, d')`` dense code table; the sparse-vs-dense panel needs ``d == d'``.
        out: PNG path.
        num: codes drawn from each table (fewer if the table is smaller).
        seed: selection seed.
    """
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    s = sparse_codes[rng.choice(len(sparse_codes), min(num, len(sparse_codes)), replace=False)]
    d = dense_codes[rng.choice(len(dense_codes), min(num, len(dense_codes)), replace=False)]
    panels = [("sparse vs sparse", _cosine(s, s)), ("dense vs dense", _cosine(d, d))]
    if s.shape[1] == d.shape[1]:
        panels.append(("dense (y) vs sparse (x)", _cosine(d, s)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (name, sim) in zip(axes[0], panels):
        im = ax.imshow(sim, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_title(name)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
