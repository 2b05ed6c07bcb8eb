"""Matchings on small cluster graphs: a preference-ordered greedy matching grown to a target size.

Used by :mod:`skeletok.data.body.hem` to merge clusters pairwise when a coarsening step must hit an
exact cluster count (e.g. 96 fine clusters into exactly 48 dense clusters of two each). The
greedy pass takes edges in the caller's preference order; if it yields too few pairs, Edmonds'
blossom algorithm augments it (each augmentation adds one pair and keeps every matched node
matched) until the target size or the maximum cardinality is reached.

Shapes: ``n`` nodes, ``e`` candidate edges.
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["greedy_matching", "grow_matching", "maximum_matching"]


def greedy_matching(num_nodes: int, edges: np.ndarray) -> np.ndarray:
    """Greedy matching: take each edge in the given order if both ends are still free.

    Args:
        num_nodes: number of nodes ``n``.
        edges: ``(e, 2)`` int node pairs, most preferred first; self-loops are skipped.

    Returns:
        ``mate``: ``(n,)`` int64, the partner of each node or ``-1`` if unmatched.
    """
    mate = np.full(num_nodes, -1, dtype=np.int64)
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        if a != b and mate[a] < 0 and mate[b] < 0:
            mate[a], mate[b] = b, a
    return mate


def _augmenting_path(neighbours: list[list[int]], mate: list[int], root: int) -> int:
    """Edmonds' search from a free ``root``; augments ``mate`` in place, returns 1 if it did."""
    n = len(neighbours)
    parent = [-1] * n
    base = list(range(n))
    used = [False] * n
    used[root] = True
    queue = deque([root])

    def lowest_common_ancestor(a: int, b: int) -> int:
        seen = [False] * n
        while True:
            a = base[a]
            seen[a] = True
            if mate[a] < 0:
                break
            a = parent[mate[a]]
        while True:
            b = base[b]
            if seen[b]:
                return b
            b = parent[mate[b]]

    def mark_path(v: int, stem: int, child: int, blossom: list[bool]) -> None:
        while base[v] != stem:
            blossom[base[v]] = blossom[base[mate[v]]] = True
            parent[v] = child
            child = mate[v]
            v = parent[mate[v]]

    while queue:
        v = queue.popleft()
        for to in neighbours[v]:
            if base[v] == base[to] or mate[v] == to:
                continue
            if to == root or (mate[to] >= 0 and parent[mate[to]] >= 0):
                stem = lowest_common_ancestor(v, to)
                blossom = [False] * n
                mark_path(v, stem, to, blossom)
                mark_path(to, stem, v, blossom)
                for i in range(n):
                    if blossom[base[i]]:
                        base[i] = stem
                        if not used[i]:
                            used[i] = True
                            queue.append(i)
            elif parent[to] < 0:
                parent[to] = v
                if mate[to] < 0:  # free node reached: flip the alternating path back to the root
                    while to >= 0:
                        prev = parent[to]
                        nxt = mate[prev]
                        mate[to], mate[prev] = prev, to
                        to = nxt
                    return 1
                used[mate[to]] = True
                queue.append(mate[to])
    return 0


def grow_matching(num_nodes: int, edges: np.ndarray, mate: np.ndarray, target: int | None = None) -> np.ndarray:
    """Augment a matching along augmenting paths until it has ``target`` pairs or is maximum.

    Args:
        num_nodes: number of nodes ``n``.
        edges: ``(e, 2)`` int node pairs of the (undirected) graph.
        mate: ``(n,)`` int, the starting matching (``-1`` = unmatched); not modified.
        target: stop once the matching has this many pairs; ``None`` = maximum cardinality.

    Returns:
        ``(n,)`` int64 matching; nodes matched in ``mate`` stay matched (possibly re-paired).
    """
    neighbours: list[set[int]] = [set() for _ in range(num_nodes)]
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        if a != b:
            neighbours[a].add(int(b))
            neighbours[b].add(int(a))
    adjacency = [sorted(s) for s in neighbours]
    current = [int(m) for m in mate]
    pairs = sum(m >= 0 for m in current) // 2
    for root in range(num_nodes):  # a root that fails once can never be augmented later (Edmonds)
        if target is not None and pairs >= target:
            break
        if current[root] < 0:
            pairs += _augmenting_path(adjacency, current, root)
    return np.asarray(current, dtype=np.int64)


def maximum_matching(num_nodes: int, edges: np.ndarray) -> np.ndarray:
    """Maximum cardinality matching of a general graph (greedy in edge order, then Edmonds).

    Args:
        num_nodes: number of nodes ``n``.
        edges: ``(e, 2)`` int node pairs, most preferred first.

    Returns:
        ``mate``: ``(n,)`` int64, the partner of each node or ``-1``.
    """
    return grow_matching(num_nodes, edges, greedy_matching(num_nodes, edges))
