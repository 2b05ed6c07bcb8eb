"""Mesh graphs: the weighted vertex adjacency, connected components, vertex areas, vertex maps.

Helpers of :mod:`skeletok.data.body.hem` (which re-exports them). Shapes: ``v`` vertices, ``f`` faces,
``n`` rows of a vertex map, ``c`` coordinates.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = ["mesh_adjacency", "connected_components", "vertex_areas", "apply_vertex_matrix"]

WEIGHTS = ("count", "inverse_length")
_CHUNK = 256  # frames per sparse product in apply_vertex_matrix (bounds the temporary copies)


def _check_faces(num_vertices: int, faces) -> np.ndarray:
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] < 3 or faces.shape[0] == 0:
        raise ValueError(f"faces must have shape (f, 3) (or (f, k) polygons, k >= 3, f >= 1), got {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must hold integer vertex indices, got dtype {faces.dtype}")
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise ValueError(
            f"faces must index vertices in [0, {num_vertices}), got values in [{faces.min()}, {faces.max()}]"
        )
    return faces.astype(np.int64)


def _check_vertices(vertices) -> np.ndarray:
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.issubdtype(vertices.dtype, np.floating):
        raise ValueError(f"vertices must be a float array of shape (v, 3), got {vertices.dtype} {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("vertices must be finite, got NaN or inf")
    return vertices.astype(np.float64)


def mesh_adjacency(num_vertices: int, faces, *, vertices=None, weight: str = "count") -> sp.csr_matrix:
    """Weighted vertex graph of a mesh: one symmetric edge per face side, zero diagonal.

    Args:
        num_vertices: number of vertices ``v``.
        faces: ``(f, 3)`` int triangles (or ``(f, k)`` polygons; consecutive corners are joined).
            Repeated corners in a face add no self-loop.
        vertices: ``(v, 3)`` float positions, needed for ``weight="inverse_length"``.
        weight: ``"count"``: ``W_ij`` = number of faces sharing edge ``ij`` (2 inside, 1 on a
            border; the topological weight, binary up to borders as in HGN on SMPL); ``"inverse_length"``:
            ``W_ij = mean edge length / |x_i - x_j|`` (close vertices pair first).

    Returns:
        ``(v, v)`` float64 CSR matrix ``W``.

    Raises:
        ValueError: for bad faces, a missing or malformed ``vertices``, or an unknown ``weight``.
    """
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {WEIGHTS}, got {weight!r}")
    if int(num_vertices) != num_vertices or num_vertices < 1:
        raise ValueError(f"num_vertices must be a positive int, got {num_vertices!r}")
    faces = _check_faces(int(num_vertices), faces)
    i = faces.reshape(-1)
    j = np.roll(faces, -1, axis=1).reshape(-1)
    keep = i != j
    i, j = i[keep], j[keep]
    counts = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(num_vertices, num_vertices)).tocsr()
    w = (counts + counts.T).tocoo()  # faces per undirected edge, stored in both directions
    if weight == "inverse_length":
        if vertices is None:
            raise ValueError('vertices must be given for weight="inverse_length", got None')
        vertices = _check_vertices(vertices)
        if len(vertices) != num_vertices:
            raise ValueError(f"vertices must have {num_vertices} rows, got {len(vertices)}")
        length = np.linalg.norm(vertices[w.row] - vertices[w.col], axis=1)
        if (length <= 0).any():
            raise ValueError("vertices: some faces join coincident vertices (edge length 0); inverse_length needs > 0")
        w = sp.coo_matrix((length.mean() / length, (w.row, w.col)), shape=w.shape)
    return w.tocsr()


def connected_components(adjacency: sp.spmatrix) -> tuple[int, np.ndarray]:
    """Connected components of an undirected graph.

    Args:
        adjacency: ``(v, v)`` symmetric sparse matrix.

    Returns:
        ``(count, labels)``: number of components and ``(v,)`` int64 labels, components numbered by
        decreasing size (ties: smallest vertex first), so label 0 is the largest component.
    """
    count, labels = csgraph.connected_components(adjacency, directed=False)
    sizes = np.bincount(labels, minlength=count)
    first = np.full(count, len(labels))
    np.minimum.at(first, labels, np.arange(len(labels)))
    order = np.lexsort((first, -sizes))
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    return int(count), rank[labels]


def vertex_areas(vertices, faces) -> np.ndarray:
    """``(v,)`` float64 area around each vertex: a third of each incident triangle's area (m^2)."""
    vertices, faces = _check_vertices(vertices), _check_faces(len(vertices), faces)
    tri = vertices[faces[:, :3]]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return np.bincount(faces[:, :3].ravel(), weights=np.repeat(area / 3.0, 3), minlength=len(vertices))


def apply_vertex_matrix(matrix: sp.spmatrix, vertices) -> np.ndarray:
    """Apply a ``(n, v)`` sparse matrix to every frame of ``(..., v, c)`` vertices.

    Frames are processed in chunks as one product with ``matrix (x) I_c`` on the contiguous
    ``(frames, v * c)`` layout, which avoids transposing the whole vertex array.

    Args:
        matrix: ``(n, v)`` sparse weights.
        vertices: ``(..., v, c)`` float array.

    Returns:
        ``(..., n, c)`` array, dtype of ``vertices``.
    """
    vertices = np.asarray(vertices)
    n, v = matrix.shape
    if vertices.ndim < 2 or vertices.shape[-2] != v or not np.issubdtype(vertices.dtype, np.floating):
        raise ValueError(
            f"vertices must be a float array of shape (..., {v}, c), got {vertices.dtype} {vertices.shape}"
        )
    c = vertices.shape[-1]
    lead = vertices.shape[:-2]
    flat = np.ascontiguousarray(vertices).reshape(-1, v * c)
    kron = sp.kron(matrix, sp.eye(c), format="csr").astype(vertices.dtype)
    out = np.empty((len(flat), n * c), dtype=vertices.dtype)
    for start in range(0, len(flat), _CHUNK):
        out[start : start + _CHUNK] = (kron @ flat[start : start + _CHUNK].T).T
    return out.reshape(lead + (n, c))
