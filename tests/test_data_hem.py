"""HEM coarsening: adjacency, Graclus matching rule, exact nested connected clusters, matchings."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csgraph

from skeletok.data.body.hem import (
    coarsen_graph,
    coarsen_mesh,
    connected_components,
    heavy_edge_matching,
    mesh_adjacency,
    vertex_areas,
)
from skeletok.data.body.matching import greedy_matching, grow_matching, maximum_matching


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    t = (1 + 5**0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]  # fmt: skip
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]  # fmt: skip
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(subdivisions):
        cache, faces = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = faces
    return np.array(verts), np.array(f, dtype=np.int64)


def tube(rings: int, segments: int, radius: float = 0.1, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Open cylinder grid, rings along z, uneven spacing (denser near one end)."""
    z = length * np.linspace(0, 1, rings) ** 1.5
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    verts = np.stack([np.repeat(radius * np.cos(a)[None], rings, 0), np.repeat(radius * np.sin(a)[None], rings, 0),
                      np.repeat(z[:, None], segments, 1)], -1).reshape(-1, 3)  # fmt: skip
    r, s = np.meshgrid(np.arange(rings - 1), np.arange(segments), indexing="ij")
    i00, i01 = r * segments + s, r * segments + (s + 1) % segments
    i10, i11 = i00 + segments, i01 + segments
    faces = np.concatenate([np.stack([i00, i01, i11], -1).reshape(-1, 3), np.stack([i00, i11, i10], -1).reshape(-1, 3)])
    return verts, faces


def check_hierarchy(h, faces, num_vertices, sizes):
    """Exact counts, nesting into pairs, connected clusters, every component vertex assigned."""
    w = mesh_adjacency(num_vertices, faces)
    _, labels = connected_components(w)
    inside = labels == 0
    assert (h.assignments[0][inside] >= 0).all() and (h.assignments[0][~inside] == -1).all()
    for level, n in enumerate(sizes):
        ids = h.vertex_to_level(level)
        assert np.array_equal(np.unique(ids[inside]), np.arange(n))
        for c in range(n):
            members = np.flatnonzero(ids == c)
            count, _ = csgraph.connected_components(w[members][:, members], directed=False)
            assert count == 1, f"level {level} cluster {c} is not connected"
    for level in range(1, len(sizes)):
        step = h.assignments[level]
        assert step.shape == (sizes[level - 1],)
        if 2 * sizes[level] == sizes[level - 1]:
            assert np.array_equal(np.bincount(step, minlength=sizes[level]), np.full(sizes[level], 2))
            assert np.array_equal(step, np.arange(sizes[level - 1]) // 2)  # canonical numbering


def test_mesh_adjacency_counts_and_lengths():
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 2, 0], [0, 2, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    w = mesh_adjacency(4, faces).toarray()
    assert np.array_equal(w, w.T) and np.all(np.diag(w) == 0)
    assert w[0, 2] == 2 and w[0, 1] == 1 and w[2, 3] == 1 and w[1, 3] == 0
    inv = mesh_adjacency(4, faces, vertices=verts, weight="inverse_length").toarray()
    lengths = np.array([1, 2, 5**0.5, 1, 2])  # 01, 12, 02, 23, 30
    mean = lengths.mean()
    assert inv[0, 1] == pytest.approx(mean / 1) and inv[1, 2] == pytest.approx(mean / 2)
    assert inv[0, 2] == pytest.approx(mean / 5**0.5)
    assert vertex_areas(verts, faces).sum() == pytest.approx(2.0)


@pytest.mark.parametrize(
    "faces, match",
    [(np.array([[0, 1, 7]]), "faces must index"), (np.array([[0, 1, -1]]), "faces must index"),
     (np.array([[0.0, 1, 2]]), "integer"), (np.array([0, 1, 2]), "shape"), (np.zeros((0, 3), int), "shape")],
)  # fmt: skip
def test_bad_faces(faces, match):
    with pytest.raises(ValueError, match=match):
        mesh_adjacency(4, faces)
    with pytest.raises(ValueError, match=match):
        coarsen_mesh(np.zeros((4, 3)), faces, sizes=(2, 1))


def test_bad_arguments():
    verts, faces = icosphere(2)
    with pytest.raises(ValueError, match="weight"):
        mesh_adjacency(len(verts), faces, weight="cotangent")
    with pytest.raises(ValueError, match="vertices must be given"):
        mesh_adjacency(len(verts), faces, weight="inverse_length")
    with pytest.raises(ValueError, match="strictly decreasing"):
        coarsen_mesh(verts, faces, sizes=(48, 96))
    with pytest.raises(ValueError, match="at least half"):
        coarsen_mesh(verts, faces, sizes=(96, 40))
    with pytest.raises(ValueError, match="largest connected component"):
        coarsen_mesh(verts, faces, sizes=(1000,))
    with pytest.raises(ValueError, match="balance"):
        coarsen_mesh(verts, faces, balance="volume")
    with pytest.raises(ValueError, match="vertices must be"):
        coarsen_mesh(verts[:, :2], faces)
    with pytest.raises(ValueError, match="finite"):
        coarsen_mesh(np.full_like(verts, np.nan), faces)


def test_connected_components_largest_first():
    faces = np.array([[0, 1, 2], [3, 4, 5], [4, 5, 6], [5, 6, 7]])
    count, labels = connected_components(mesh_adjacency(9, faces))
    assert count == 3 and labels.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 2]


def reference_hem(w: np.ndarray) -> np.ndarray:
    """Plain transcription of the Graclus rule on a dense matrix."""
    n = len(w)
    d = w.sum(1)
    out = [-1] * n
    count = 0
    for i in sorted(range(n), key=lambda k: (d[k], k)):
        if out[i] >= 0:
            continue
        out[i] = count
        best, best_score = None, -np.inf
        for j in range(n):
            if j != i and w[i, j] > 0 and out[j] < 0:
                score = (2 * w[i, j] + w[i, i] + w[j, j]) / (d[i] + d[j])
                if score > best_score:
                    best, best_score = j, score
        if best is not None:
            out[best] = count
        count += 1
    return np.array(out)


def test_hem_path_graph():
    w = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], float))
    assert heavy_edge_matching(w).tolist() == [0, 0, 1, 1]


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 14), st.integers(0, 10_000))
def test_hem_matches_reference(n, seed):
    rng = np.random.default_rng(seed)
    w = np.triu(rng.integers(0, 4, (n, n)) * (rng.random((n, n)) < 0.5), 1).astype(float)
    w = w + w.T + np.diag(rng.integers(0, 3, n))
    got = heavy_edge_matching(sp.csr_matrix(w))
    assert np.array_equal(got, reference_hem(w))
    assert np.bincount(got).max() <= 2
    coarse = coarsen_graph(sp.csr_matrix(w), got).toarray()
    assert coarse.sum() == pytest.approx(w.sum())


def brute_force_matching_size(n: int, edges: np.ndarray) -> int:
    """Maximum matching size by dynamic programming over the set of used nodes."""
    adjacency = [set() for _ in range(n)]
    for a, b in edges.tolist():
        adjacency[a].add(b)
        adjacency[b].add(a)
    best = {}

    def solve(used: int) -> int:
        if used in best:
            return best[used]
        free = [i for i in range(n) if not used >> i & 1]
        if not free:
            return 0
        i = free[0]
        result = solve(used | 1 << i)
        for j in adjacency[i]:
            if not used >> j & 1:
                result = max(result, 1 + solve(used | 1 << i | 1 << j))
        best[used] = result
        return result

    return solve(0)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 13), st.floats(0.1, 0.6), st.integers(0, 10_000))
def test_maximum_matching_is_maximum(n, p, seed):
    rng = np.random.default_rng(seed)
    edges = np.array([(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < p], dtype=np.int64)
    edges = edges.reshape(-1, 2)
    mate = maximum_matching(n, edges)
    pairs = {(min(a, m), max(a, m)) for a, m in enumerate(mate) if m >= 0}
    assert all(mate[m] == a for a, m in enumerate(mate) if m >= 0)
    assert pairs <= {tuple(e) for e in edges.tolist()}
    assert len(pairs) == brute_force_matching_size(n, edges)
    target = len(pairs) // 2
    grown = grow_matching(n, edges, np.full(n, -1), target=target)
    assert (grown >= 0).sum() // 2 == target


def test_greedy_then_augment():
    # path 0-1-2-3-4-5: greedy on the middle edges first leaves 0 and 5 free; one augmentation fixes it
    edges = np.array([[1, 2], [3, 4], [0, 1], [2, 3], [4, 5]])
    assert (greedy_matching(6, edges) >= 0).sum() // 2 == 2
    mate = maximum_matching(6, edges)
    assert mate.tolist() == [1, 0, 3, 2, 5, 4]


@pytest.mark.parametrize("balance", ["vertices", "area"])
@pytest.mark.parametrize("weight", ["count", "inverse_length"])
def test_coarsen_icosphere(weight, balance):
    verts, faces = icosphere(4)  # 2,562 vertices
    h = coarsen_mesh(verts, faces, (96, 48), weight=weight, balance=balance)
    check_hierarchy(h, faces, len(verts), (96, 48))
    assert h.hem_sizes[0] == len(verts) and all(a > b for a, b in zip(h.hem_sizes, h.hem_sizes[1:]))
    assert h.hem_sizes[-1] > 96 and (balance == "area" or h.hem_sizes[-1] < 2 * 96 + 10)
    again = coarsen_mesh(verts, faces, (96, 48), weight=weight, balance=balance)
    assert all(np.array_equal(a, b) for a, b in zip(h.assignments, again.assignments))


def test_points_are_cluster_means():
    verts, faces = icosphere(3)
    h = coarsen_mesh(verts, faces, (40, 20))
    frames = np.stack([verts, 2 * verts + 1]).astype(np.float32)
    fine, dense = h.points(frames)
    assert fine.shape == (2, 40, 3) and dense.shape == (2, 20, 3) and fine.dtype == np.float32
    for level, pts in enumerate((fine, dense)):
        ids = h.vertex_to_level(level)
        for c in range(h.sizes[level]):
            np.testing.assert_allclose(pts[:, c], frames[:, ids == c].mean(1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="vertices must be"):
        h.points(verts[:10])
    with pytest.raises(ValueError, match="level"):
        h.vertex_to_level(2)


def test_other_components_unassigned_and_areas_balanced():
    verts, faces = tube(60, 40)  # dense rings near z = 0
    extra = np.array([[0, 0, 5], [1, 0, 5], [0, 1, 5]], float)
    all_verts = np.concatenate([verts, extra])
    all_faces = np.concatenate([faces, [[len(verts), len(verts) + 1, len(verts) + 2]]])
    for balance in ("vertices", "area"):
        h = coarsen_mesh(all_verts, all_faces, (96, 48), balance=balance)
        check_hierarchy(h, all_faces, len(all_verts), (96, 48))
        assert (h.assignments[0][len(verts) :] == -1).all()
    area = vertex_areas(all_verts, all_faces)
    spread = {}
    for balance in ("vertices", "area"):
        ids = coarsen_mesh(all_verts, all_faces, (96, 48), balance=balance).assignments[0]
        per = np.bincount(ids[ids >= 0], weights=area[ids >= 0])
        spread[balance] = per.max() / per.min()
    assert spread["area"] < spread["vertices"] / 2


@settings(max_examples=20, deadline=None)
@given(st.integers(8, 30), st.integers(6, 24), st.integers(4, 40), st.sampled_from(["vertices", "area"]))
def test_coarsen_tube_invariants(rings, segments, dense, balance):
    verts, faces = tube(rings, segments)
    sizes = (2 * dense, dense)
    if sizes[0] > len(verts):
        with pytest.raises(ValueError):
            coarsen_mesh(verts, faces, sizes, balance=balance)
        return
    h = coarsen_mesh(verts, faces, sizes, balance=balance)
    check_hierarchy(h, faces, len(verts), sizes)


def test_coarsen_level_as_large_as_the_mesh_keeps_every_vertex():
    """Regression (found by hypothesis): sizes[0] equal to the vertex count must merge nothing at level 0."""
    verts, faces = tube(8, 8)
    h = coarsen_mesh(verts, faces, (64, 32), balance="vertices")
    assert np.array_equal(np.sort(h.vertex_to_level(0)), np.arange(64))  # one vertex per cluster (renumbered)
    check_hierarchy(h, faces, len(verts), (64, 32))


def body_mesh():
    path = resources.files("skeletok.data") / "assets" / "body.npz"
    if not path.is_file():
        pytest.skip("body asset skeletok/data/assets/body.npz not built")
    with np.load(path) as data:
        return data["vertices"][0].astype(np.float64), data["faces"]


@pytest.mark.parametrize("balance", ["vertices", "area"])
def test_coarsen_real_body(balance):
    verts, faces = body_mesh()
    h = coarsen_mesh(verts, faces, (96, 48), balance=balance)
    check_hierarchy(h, faces, len(verts), (96, 48))
    counts = np.bincount(h.assignments[0][h.assignments[0] >= 0])
    if balance == "vertices":  # the numbers recorded in the design notes
        assert h.hem_sizes == [6591, 3471, 1834, 976, 514, 271, 149]
        assert counts.min() == 47 and counts.max() == 102
    else:
        area = np.bincount(h.assignments[0], weights=vertex_areas(verts, faces))
        assert area.max() / area.min() < 4
