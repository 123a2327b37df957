"""Centroid linkage of many points in bounded memory.

pyannote clusters with ``scipy.cluster.hierarchy.linkage(points, "centroid")``. scipy computes
the condensed distance matrix (``pdist``, N(N-1)/2 float64) and its generic clustering
algorithm (Müllner's, with Lance-Williams updates of the non-squared distances) starts by
copying it, so the peak holds the N^2 matrix twice. ``exact_centroid_linkage`` runs the same
algorithm on the one matrix it computes, updating it in place with the same float operations
in the same order and the same binary heap, so the dendrogram is scipy's bit for bit at half
the memory. Past a size where even one matrix is too large, ``bounded_centroid_linkage``
keeps the clusters' centroids instead (memory linear in N, distances computed as needed):
the same merges up to rounding and the order of near ties. (fastcluster's ``linkage_vector``
does the same in C++ but was several times slower here: benchmarks/README.md.)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import pdist

MATRIX_ITEM_BYTES = 8  # float64 distances


def matrix_bytes(count: int) -> int:
    """Bytes of the condensed float64 distance matrix of ``count`` points."""
    return MATRIX_ITEM_BYTES * count * (count - 1) // 2


class _Heap:
    """scipy's binary min-heap of values keyed 0..n-1 (``_structures.pxi``), the same sifts in
    the same order: which of two equal distances comes first depends on them."""

    def __init__(self, values: list[float]):
        self.values = list(values)
        self.size = len(values)
        self.key_by_index = list(range(self.size))
        self.index_by_key = list(range(self.size))
        for i in reversed(range(self.size // 2)):
            self._sift_down(i)

    def get_min(self) -> tuple[int, float]:
        return self.key_by_index[0], self.values[0]

    def remove_min(self) -> None:
        self._swap(0, self.size - 1)
        self.size -= 1
        self._sift_down(0)

    def change_value(self, key: int, value: float) -> None:
        index = self.index_by_key[key]
        old = self.values[index]
        self.values[index] = value
        if value < old:
            self._sift_up(index)
        else:
            self._sift_down(index)

    def _sift_up(self, index: int) -> None:
        values = self.values
        parent = (index - 1) >> 1
        while index > 0 and values[parent] > values[index]:
            self._swap(index, parent)
            index = parent
            parent = (index - 1) >> 1

    def _sift_down(self, index: int) -> None:
        values, size = self.values, self.size
        child = 2 * index + 1
        while child < size:
            if child + 1 < size and values[child + 1] < values[child]:
                child += 1
            if values[index] > values[child]:
                self._swap(index, child)
                index = child
                child = 2 * index + 1
            else:
                break

    def _swap(self, i: int, j: int) -> None:
        values, keys, where = self.values, self.key_by_index, self.index_by_key
        values[i], values[j] = values[j], values[i]
        key_i, key_j = keys[i], keys[j]
        keys[i], keys[j] = key_j, key_i
        where[key_i], where[key_j] = j, i


def _check_finite(distances: np.ndarray, block: int = 1 << 20) -> None:
    """scipy's check, block by block (its mask of the whole matrix would be an eighth more)."""
    for start in range(0, len(distances), block):
        if not np.isfinite(distances[start:start + block]).all():
            raise ValueError("The condensed distance matrix must contain only finite values.")


def exact_centroid_linkage(points: np.ndarray) -> np.ndarray:
    """``scipy.cluster.hierarchy.linkage(points, "centroid", "euclidean")``, bit for bit,
    holding one condensed distance matrix instead of two.

    The loop below is scipy's ``fast_linkage`` (the generic algorithm: a heap of lower bounds
    of each cluster's distance to its nearest neighbour among higher indices) with the
    per-cluster inner loops done by numpy on the same values, so every distance is the same
    IEEE double computed by the same sequence of operations.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    n = len(points)
    if n < 2:
        raise ValueError("at least two points are needed")
    distances = pdist(points, "euclidean")  # the one matrix; updated in place below
    _check_finite(distances)
    return _generic_centroid(distances, n)


def _generic_centroid(d: np.ndarray, n: int) -> np.ndarray:
    """scipy's ``fast_linkage`` for the centroid method on condensed distances ``d`` (n points),
    which it overwrites."""
    rows = np.arange(n, dtype=np.int64)
    # condensed index of (i, j), i < j, is base[i] + j
    base = n * rows - rows * (rows + 1) // 2 - rows - 1
    size = np.ones(n, dtype=np.int64)
    alive = rows.copy()  # indices of live clusters, increasing
    cluster_id = rows.copy()
    neighbor = np.empty(max(n - 1, 0), dtype=np.int64)
    min_dist = np.empty(max(n - 1, 0))
    z_matrix = np.empty((n - 1, 4))

    def find_min_dist(x: int) -> tuple[int, float]:
        """Nearest live cluster above ``x``: the first strict minimum, NaN never taken."""
        after = alive[np.searchsorted(alive, x, side="right"):]
        if len(after) == 0:
            return -1, math.inf
        values = d[base[x] + after]
        values = np.where(np.isnan(values), np.inf, values)
        k = int(np.argmin(values))
        if values[k] == math.inf:
            return -1, math.inf
        return int(after[k]), float(values[k])

    def at(i: int, j: int) -> float:
        return float(d[base[i] + j] if i < j else d[base[j] + i])

    for x in range(n - 1):
        first = d[base[x] + x + 1:base[x] + n]
        k = int(np.argmin(first))  # all clusters live, all finite
        neighbor[x], min_dist[x] = x + 1 + k, first[k]
    heap = _Heap(min_dist.tolist())

    for k in range(n - 1):
        x, dist, y = 0, 0.0, 0
        for _ in range(n - k):
            x, dist = heap.get_min()
            y = int(neighbor[x])
            if y >= 0 and dist == at(x, y):
                break
            y, dist = find_min_dist(x)
            neighbor[x], min_dist[x] = y, dist
            heap.change_value(x, dist)
        heap.remove_min()

        id_x, id_y = int(cluster_id[x]), int(cluster_id[y])
        nx, ny = int(size[x]), int(size[y])
        z_matrix[k] = (min(id_x, id_y), max(id_x, id_y), dist, nx + ny)
        size[x], size[y] = 0, nx + ny
        cluster_id[y] = n + k
        alive = np.delete(alive, np.searchsorted(alive, x))

        # Lance-Williams for the centroid method, scipy's expression and operation order:
        # sqrt((((nx*dzx*dzx) + (ny*dzy*dzy)) - (nx*ny*dxy*dxy)/(nx+ny)) / (nx+ny))
        others = alive[alive != y]
        at_x = np.where(others < x, base[others] + x, base[x] + others)
        at_y = np.where(others < y, base[others] + y, base[y] + others)
        dzx, dzy = d[at_x], d[at_y]
        total = float(nx + ny)
        joined = float(nx * ny) * dist * dist / total
        updated = np.sqrt((((nx * dzx) * dzx + (ny * dzy) * dzy) - joined) / total)
        d[at_y] = updated

        # clusters below x that pointed at x now point at y (a guess, checked when popped)
        head = neighbor[:x]
        head[(head == x) & (size[:x] > 0)] = y

        # tighter lower bounds for the clusters below y
        below = others < y
        lower, values = others[below], updated[below]
        closer = values < min_dist[lower]
        for z, value in zip(lower[closer].tolist(), values[closer].tolist()):
            neighbor[z], min_dist[z] = y, value
            heap.change_value(z, value)

        if y < n - 1:
            z, value = find_min_dist(y)
            if z != -1:
                neighbor[y], min_dist[y] = z, value
                heap.change_value(y, value)
    return z_matrix


def bounded_centroid_linkage(points: np.ndarray, prefilter: int = 16) -> np.ndarray:
    """Centroid linkage holding the centroids (N x dimension) instead of N^2 distances.

    Müllner's generic algorithm on stored centroids, each cluster keyed in a heap by a lower
    bound of the distance to its nearest neighbour among all others (exact once computed,
    until that neighbour changes; a new cluster computes its own, which covers every pair
    it is in, so no other key needs lowering). A nearest-neighbour search first bounds every
    distance from below by the first ``prefilter`` principal axes (float32), then computes
    the exact distance (float64) of the candidates only. Distances are between centroids
    rather than scipy's Lance-Williams updates of earlier distances: equal in exact
    arithmetic, different in the last bits, so heights differ from scipy's by rounding and
    merges only where two candidate distances are that close.
    """
    points = np.asarray(points, dtype=np.float64)
    n, dimension = points.shape
    if n < 2:
        raise ValueError("at least two points are needed")
    if not np.isfinite(points).all():
        raise ValueError("The condensed distance matrix must contain only finite values.")
    # rotated onto principal axes: distances unchanged, the first axes carry most of them
    # (the centred copy and its product are formed without an N x dimension temporary)
    mean = points.mean(axis=0)
    axes = np.linalg.eigh(points.T @ points - n * np.outer(mean, mean))[1][:, ::-1]
    centroids = points @ axes  # row r: the cluster rows[r]; rows increasing
    centroids -= mean @ axes
    k = min(prefilter, dimension)
    head = np.ascontiguousarray(centroids[:, :k], dtype=np.float32)
    head_squares = np.einsum("ij,ij->i", head, head)
    rows = np.arange(n, dtype=np.int64)  # cluster index of each stored row
    live = np.ones(n, dtype=bool)  # per stored row
    row_of = np.arange(n, dtype=np.int64)  # stored row of each cluster index
    size = np.ones(n, dtype=np.int64)
    cluster_id = np.arange(n, dtype=np.int64)
    version = np.zeros(n, dtype=np.int64)  # changes when the cluster's centroid does
    neighbor = np.full(n, -1, dtype=np.int64)
    neighbor_version = np.full(n, -1, dtype=np.int64)
    own_version = np.full(n, -1, dtype=np.int64)
    z_matrix = np.empty((n - 1, 4))

    # float32 rounding of the bound: squared head norms are at most this (about 4 for unit
    # vectors), so the bound is never more than slack above the true squared distance
    slack = 1e-5 * 4 * float(head_squares.max()) + 1e-12

    def nearest(x: int) -> tuple[int, float]:
        """(index, distance) of the nearest other live cluster; the lowest index on ties."""
        r = row_of[x]
        # squared projected distance, less the constant head_squares[r]; dead rows are inf
        bound = head @ head[r]
        np.multiply(bound, -2, out=bound)
        np.add(bound, head_squares, out=bound)
        bound[r] = np.inf
        first = int(np.argmin(bound))
        if bound[first] == np.inf:
            return -1, math.inf
        difference = centroids[first] - centroids[r]
        best = float(difference @ difference)
        candidates = np.flatnonzero(bound <= best - head_squares[r] + slack)
        difference = centroids[candidates] - centroids[r]
        exact = np.einsum("ij,ij->i", difference, difference)
        j = int(np.argmin(exact))
        return int(rows[candidates[j]]), math.sqrt(exact[j])

    heap = _Heap([0.0] * n)  # 0: not computed yet, a lower bound of anything
    for k_merge in range(n - 1):
        while True:
            x, dist = heap.get_min()
            y = int(neighbor[x])
            if y >= 0 and size[y] > 0 and own_version[x] == version[x] and \
                    neighbor_version[x] == version[y]:
                break
            y, dist = nearest(x)
            neighbor[x], own_version[x], neighbor_version[x] = y, version[x], version[y]
            heap.change_value(x, dist)
        heap.remove_min()  # x: it is merged into y

        id_x, id_y = int(cluster_id[x]), int(cluster_id[y])
        nx, ny = int(size[x]), int(size[y])
        z_matrix[k_merge] = (min(id_x, id_y), max(id_x, id_y), dist, nx + ny)
        size[x], size[y] = 0, nx + ny
        cluster_id[y] = n + k_merge
        version[y] = k_merge + 1  # unique: a neighbour recorded before can never look current
        rx, ry = row_of[x], row_of[y]
        live[rx] = False
        head[rx], head_squares[rx] = 0, np.inf  # its bounds are inf from now on
        centroids[ry] = (nx * centroids[rx] + ny * centroids[ry]) / (nx + ny)
        head[ry] = centroids[ry, :k]
        head_squares[ry] = head[ry] @ head[ry]
        if 2 * (n - 1 - k_merge) < len(rows):  # drop dead rows: the searches shrink with them
            keep = np.flatnonzero(live)
            centroids, head, head_squares = centroids[keep], head[keep], head_squares[keep]
            rows, live = rows[keep], np.ones(len(keep), dtype=bool)
            row_of[rows] = np.arange(len(rows))
        if k_merge < n - 2:
            z, value = nearest(y)
            neighbor[y], own_version[y], neighbor_version[y] = z, version[y], version[z]
            heap.change_value(y, value)
    return z_matrix


def centroid_linkage(points: np.ndarray, exact_bytes: int) -> np.ndarray:
    """scipy's centroid linkage of ``points``: exact while its distance matrix takes at most
    ``exact_bytes``, from the centroids alone (same merges up to rounding) past that."""
    if matrix_bytes(len(points)) <= exact_bytes:
        return exact_centroid_linkage(points)
    return bounded_centroid_linkage(points)
