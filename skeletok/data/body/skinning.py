"""Skinning weights that do not tear the mesh: geodesic smoothing, and the edge stretch that measures tearing.

Shape notation: ``v`` vertices, ``f`` triangles, ``e`` mesh edges, ``k`` rig joints, ``i`` influences per vertex,
``t`` frames.

Linear blend skinning moves each vertex with the blend of its bones' rigid motions, so an edge whose two vertices
carry very different weights is torn apart when those bones move differently. The MakeHuman ``cmu_mb`` weights
change abruptly at the crotch (a midline vertex weighted half to each thigh sits 2 mm from one weighted 0.92 to
the left thigh) and in the armpits: in wide-leg poses of the default data edges stretched up to 65 times their rest
length. :func:`smooth_skin_weights` replaces every vertex's weights by a Gaussian average over the vertices within
three ``sigma`` along the mesh surface (geodesic distance along mesh edges, so weights never leak across the gap
between the thighs or between arm and torso), which bounds how fast the weights change along the surface; with
``sigma = 4 cm`` (:data:`SMOOTH_SIGMA`) the worst stretch over the default data drops to about 3.3x
(``scripts/check_bodies.py``). The committed body asset stores smoothed weights (``skin_smooth_sigma``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

__all__ = ["SMOOTH_SIGMA", "mesh_edges", "edge_stretch", "smooth_skin_weights"]

#: Width (metres) of the geodesic Gaussian that smooths the committed body's skinning weights.
SMOOTH_SIGMA = 0.04
_ROWS = 512  # vertices whose geodesic neighbourhoods are computed at once (a 512 x v distance block)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """``(e, 2)`` int64 unique undirected edges ``(a < b)`` of a triangle mesh ``faces (f, 3)``, sorted."""
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (f, 3), got {faces.shape}")
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


def edge_stretch(rest_vertices: np.ndarray, posed_vertices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Posed over rest length of every mesh edge.

    Args:
        rest_vertices: ``(v, 3)`` rest template.
        posed_vertices: ``(t, v, 3)`` posed vertices (or ``(v, 3)`` for one pose).
        edges: ``(e, 2)`` vertex pairs (:func:`mesh_edges`).

    Returns:
        ``(t, e)`` (or ``(e,)``) float64 ratios; 1 is unstretched, rest edges of length 0 give ``inf``.
    """
    rest = np.asarray(rest_vertices, dtype=np.float64)
    posed = np.asarray(posed_vertices, dtype=np.float64)
    rest_len = np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=-1)
    posed_len = np.linalg.norm(posed[..., edges[:, 0], :] - posed[..., edges[:, 1], :], axis=-1)
    with np.errstate(divide="ignore"):
        return posed_len / rest_len


def smooth_skin_weights(vertices: np.ndarray, faces: np.ndarray, skin_index: np.ndarray, skin_weight: np.ndarray,
                        num_joints: int, *, sigma: float = SMOOTH_SIGMA,
                        influences: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Smooth skinning weights over the mesh surface with a geodesic Gaussian (see the module notes).

    Each vertex's new weights are ``sum_u g(d(v, u)) w_u / sum_u g(d(v, u))`` over the vertices ``u`` within
    ``3 sigma`` of ``v`` along mesh edges, ``g(d) = exp(-d^2 / (2 sigma^2))``; then the largest ``influences``
    weights are kept and renormalised to sum to 1.

    Args:
        vertices: ``(v, 3)`` rest vertices (metres) that set the geodesic distances.
        faces: ``(f, 3)`` triangles.
        skin_index: ``(v, i)`` joints influencing each vertex.
        skin_weight: ``(v, i)`` their non-negative weights.
        num_joints: ``k``, the number of rig joints.
        sigma: the Gaussian's width in metres (> 0).
        influences: weights kept per vertex; ``i`` when ``None``.

    Returns:
        ``skin_index (v, influences)`` int16 and ``skin_weight (v, influences)`` float32 (rows sum to 1, largest
        first).

    Raises:
        ValueError: on inconsistent shapes, a bad ``sigma`` or joint indices outside ``[0, num_joints)``.
    """
    x = np.asarray(vertices, dtype=np.float64)
    index, weight = np.asarray(skin_index), np.asarray(skin_weight, dtype=np.float64)
    v = len(x)
    if x.ndim != 2 or x.shape[1] != 3 or index.shape != weight.shape or index.ndim != 2 or len(index) != v:
        raise ValueError(f"vertices (v, 3), skin_index and skin_weight (v, i) must agree, got {x.shape}, "
                         f"{index.shape}, {weight.shape}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of metres, got {sigma!r}")
    if index.min() < 0 or index.max() >= num_joints:
        raise ValueError(f"skin_index must hold joint indices in [0, {num_joints})")
    influences = index.shape[1] if influences is None else int(influences)
    dense = np.zeros((v, num_joints))
    np.add.at(dense, (np.arange(v)[:, None], index.astype(np.int64)), weight)
    dense /= np.maximum(dense.sum(axis=1, keepdims=True), 1e-12)
    edges = mesh_edges(faces)
    length = np.linalg.norm(x[edges[:, 0]] - x[edges[:, 1]], axis=1)
    length = np.maximum(length, 1e-9)  # coincident vertices: distance 0 would drop the edge from the graph
    graph = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(v, v)).tocsr()
    out = np.empty_like(dense)
    for start in range(0, v, _ROWS):
        rows = np.arange(start, min(start + _ROWS, v))
        dist = dijkstra(graph, directed=False, indices=rows, limit=3.0 * sigma)
        kernel = np.where(np.isfinite(dist), np.exp(-0.5 * (dist / sigma) ** 2), 0.0)
        out[rows] = (kernel @ dense) / kernel.sum(axis=1, keepdims=True)
    order = np.argsort(-out, axis=1, kind="stable")[:, :influences]
    top = np.take_along_axis(out, order, axis=1)
    top /= top.sum(axis=1, keepdims=True)
    return order.astype(np.int16), top.astype(np.float32)
