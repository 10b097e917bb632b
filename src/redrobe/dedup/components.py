"""Connected components of the dedup links without per-document state in any one process.

``clusters.UnionFind`` holds one int64 per document in memory; for 10^8+ documents no
process may, so this module computes the same roots (every node's root is the smallest
node of its component) with partitioned tasks that shuffle edges through partitioned
record files (``partfile``) by URL and return only a few counts each:

    result = connected_components(edge_urls, "s3://bucket/work/cc", parts=64, owners=512,
                                  mapper=executor.map)
    labels = read_labels(result.label_urls, owner=17)   # (node, root) of shard 17, by node

The algorithm alternates the two rewiring steps of Kiveris et al., "Connected Components
in MapReduce and Beyond" (SoCC 2014). Each step is one map over the hash partitions of
the nodes: the task for partition p gathers, from every file of the previous step, the
edges keyed by its nodes, so it sees each of its nodes' neighbourhoods whole.

- large-star: node u links every *larger* neighbour to m, the smallest of u and its
  neighbours (edges to smaller neighbours are rewired by those neighbours instead);
- small-star: node u links itself and its *smaller* neighbours to m, the smallest of them.

Both keep every component connected and only ever move a node's link to a smaller node,
so the graph shrinks to one star per component centred on its minimum, in O(log^2 n)
steps in theory and about log n in practice (the paper, and ``test_components``). A
large-star step sees whole neighbourhoods, so it also tells whether its input already is
such a star forest (no node with both smaller and larger neighbours, none with two
smaller ones); then nothing changes and the driver stops. A last map writes each leaf's
(node, root) label, partitioned by the document's owner (``node >> 32``).

Per partition everything is numpy: sort the (node, neighbour) records, drop duplicates,
take each node's minimum from its run -- never a Python loop per edge, and nothing sized
by the corpus or the largest node id; a task holds only its partition's edges. A step's
files are removed once the next step has read them, so scratch space stays two steps
deep. Labels depend only on the graph, not on ``parts`` or the mapper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import fsspec
import numpy as np

from redrobe.partfile import join, partition_of, read_partition, read_partitions, write_partitioned

EDGES = np.dtype([("a", "<i8"), ("b", "<i8")])
LABELS = np.dtype([("node", "<i8"), ("root", "<i8")])
OWNER_SHIFT = 32
#: input records a scatter task reads before it drops the copies among them
SCATTER_BATCH = 1 << 13
# Far above what any graph needs (a shuffled chain of 10^6 nodes takes 33 steps): a safety
# net against a bug looping forever, not a tuning knob.
MAX_ROUNDS = 400

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Sequence[Any]]


def serial_map(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
    """The default mapper: every task in this process, in order."""
    return [fn(task) for task in tasks]


@dataclass(frozen=True)
class ComponentResult:
    """Where the labels are, and what it took to compute them."""

    label_urls: tuple[str, ...]   # LABELS files, partition = owner of the node
    rounds: int                   # star steps run (large and small)
    edges_in: int                 # input records, self-loops and duplicates included
    nodes_labelled: int           # nodes that are not the minimum of their component
    round_edges: tuple[int, ...]  # distinct undirected edges entering each step
    largest_partition: int        # most records one task read in any step


@dataclass(frozen=True)
class _Task:
    """One partition's work in one step: what to read, where to write."""

    name: str                 # for error messages (parallel.task_name)
    inputs: tuple[str, ...]
    output: str
    part: int
    parts: int
    owners: int
    read: tuple[int, int]     # input partitions [lo, hi) it reads


class _Counts(NamedTuple):
    records: int    # records read
    edges: int      # distinct undirected edges among them
    changed: int    # links this step moved to a smaller node
    unsettled: int  # nodes with two or more smaller neighbours (large-star only)


def connected_components(edge_urls: Sequence[str], workdir: str, parts: int, owners: int,
                         mapper: Mapper = serial_map, input_parts: int = 0) -> ComponentResult:
    """Label every linked node with the smallest node of its component.

    ``edge_urls``: EDGES files with ``input_parts`` partitions each (default ``parts``; any
    split of the edges: the first step reads contiguous ranges of them, so the work can
    have fewer partitions than its inputs);
    an edge is undirected, nodes are int64 ``owner << 32 | row`` with ``0 <= owner < owners``.
    Returns LABELS files (one per partition, partitioned by owner, sorted by node) holding
    (node, root) for every node in some edge except the minimum of each component.
    """
    if parts < 1 or owners < 1:
        raise ValueError("parts and owners must be positive")
    tasks = _tasks("scatter", tuple(edge_urls), join(workdir, "round-000"), parts, owners,
                   input_parts or parts)
    edges_in = sum(c.records for c in mapper(_scatter, tasks))
    round_edges: list[int] = []
    largest = 0
    while True:
        rounds = len(round_edges) + 1
        if rounds > MAX_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} steps")
        large = rounds % 2 == 1
        tasks = _tasks("large-star" if large else "small-star", _outputs(tasks),
                       join(workdir, f"round-{rounds:03d}"), parts, owners)
        counts = mapper(_large_star if large else _small_star, tasks)
        _remove(join(workdir, f"round-{rounds - 1:03d}"))
        round_edges.append(sum(c.edges for c in counts))
        largest = max(largest, *(c.records for c in counts))
        if large and not any(c.changed or c.unsettled for c in counts):
            break
    tasks = _tasks("labels", _outputs(tasks), join(workdir, "labels"), parts, owners)
    labelled = sum(c.records for c in mapper(_labels, tasks))
    _remove(join(workdir, f"round-{rounds:03d}"))
    return ComponentResult(label_urls=_outputs(tasks), rounds=rounds, edges_in=edges_in,
                           nodes_labelled=labelled, round_edges=tuple(round_edges),
                           largest_partition=largest)


def read_labels(label_urls: Sequence[str], owner: int) -> np.ndarray:
    """The LABELS records of ``owner``'s documents from every label file, sorted by node."""
    found = [read_partition(url, LABELS, owner) for url in label_urls]
    labels = np.concatenate(found) if found else np.empty(0, LABELS)
    return labels[np.argsort(labels["node"], kind="stable")]


def _tasks(step: str, inputs: tuple[str, ...], folder: str, parts: int, owners: int,
           input_parts: int = 0) -> list[_Task]:
    """One task per partition; with ``input_parts``, task p reads its share of them."""
    cuts = np.linspace(0, input_parts, parts + 1).astype(int).tolist() if input_parts else []
    return [_Task(f"{step} partition {p} of {parts}", inputs, join(folder, f"{p:05d}.part"), p, parts, owners,
                  (cuts[p], cuts[p + 1]) if cuts else (p, p + 1))
            for p in range(parts)]


def _outputs(tasks: Sequence[_Task]) -> tuple[str, ...]:
    return tuple(t.output for t in tasks)


def _remove(folder: str) -> None:
    fs, path = fsspec.core.url_to_fs(folder)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _read(task: _Task) -> np.ndarray:
    lo, hi = task.read
    found = [read_partitions(url, EDGES, lo, hi) for url in task.inputs] if hi > lo else []
    return np.concatenate(found) if found else np.empty(0, EDGES)


def _write(task: _Task, a: np.ndarray, b: np.ndarray) -> None:
    """Records (a, b) keyed by ``a``: into the partition that owns node ``a``, deduplicated."""
    a, b = _sorted_unique(a, b)
    records = np.empty(len(a), EDGES)
    records["a"], records["b"] = a, b
    del a, b   # one copy of the records while the file is written
    write_partitioned(task.output, records, partition_of(records["a"], task.parts), task.parts)


def _sorted_unique(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs sorted by a, then b."""
    # What np.unique does on an EDGES array, at half its cost (it compares structured
    # records field by field in Python-level callbacks; lexsort sorts int64 columns).
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[keep], b[keep]


def _runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``a``: the index where each run of equal values starts, and each record's run."""
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    return np.flatnonzero(first), np.cumsum(first) - 1


def _scatter(task: _Task) -> _Counts:
    """Input edges (any partitioning) -> both directions keyed by node, for a large-star.

    The edges are distinct and each has its smaller node first, so both directions are
    distinct too: they are written as they are, without :func:`_write`'s sort (a
    large-star sorts what it reads), holding one copy of the partition's records."""
    low, high, records = _distinct_links(task)
    out = np.empty(2 * len(low), EDGES)
    out["a"][:len(low)], out["b"][:len(low)] = low, high
    out["a"][len(low):], out["b"][len(low):] = high, low
    del low, high
    write_partitioned(task.output, out, partition_of(out["a"], task.parts), task.parts)
    return _Counts(records, 0, 0, 0)


def _distinct_links(task: _Task) -> tuple[np.ndarray, np.ndarray, int]:
    """The task's distinct undirected edges as (smaller, larger) node pairs, without
    self-loops (a self-loop links nothing: its node is alone unless another edge says
    so), and how many records it read.

    The inputs are read a file at a time and reduced to distinct edges every
    :data:`SCATTER_BATCH` records. An input holds many copies of some edges (a pair of
    near copies is linked once per band bucket it shares, in up to ``bands`` files), and
    they concentrate: a template family of thousands of members is one hub node whose
    whole star lands in one partition. Reducing as they come keeps the task's memory at
    its distinct edges, not at the copies, which grow with the family."""
    lo, hi = task.read
    low, high = np.empty(0, np.int64), np.empty(0, np.int64)
    batch: list[np.ndarray] = []
    pending = records = 0
    for url in task.inputs if hi > lo else ():
        edges = read_partitions(url, EDGES, lo, hi)
        _check_nodes(task, edges["a"])
        _check_nodes(task, edges["b"])
        records += len(edges)
        batch.append(edges[edges["a"] != edges["b"]])
        pending += len(batch[-1])
        if pending >= SCATTER_BATCH:
            low, high = _add_links(low, high, batch)
            batch, pending = [], 0
    low, high = _add_links(low, high, batch)
    return low, high, records


def _add_links(low: np.ndarray, high: np.ndarray, batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (smaller, larger) pairs of ``low``/``high`` and of the EDGES in ``batch``."""
    edges = np.concatenate(batch + [np.empty(0, EDGES)])
    a, b = edges["a"], edges["b"]
    return _sorted_unique(np.concatenate([low, np.minimum(a, b)]), np.concatenate([high, np.maximum(a, b)]))


def _check_nodes(task: _Task, nodes: np.ndarray) -> None:
    if len(nodes) and (nodes.min() < 0 or (nodes.max() >> OWNER_SHIFT) >= task.owners):
        raise ValueError(f"{task.name}: node ids must be 0 <= node < owners << {OWNER_SHIFT} "
                         f"(owners={task.owners}), found {int(nodes.min())}..{int(nodes.max())}")


def _large_star(task: _Task) -> _Counts:
    """Node u links each larger neighbour v to m(u) = min(u, neighbours); out: (v, m) keyed by v."""
    edges = _read(task)
    u, v = _sorted_unique(edges["a"], edges["b"])
    start, run = _runs(u)
    # Sorted by (u, v): a run's first neighbour is its smallest one.
    m = np.minimum(u[start], v[start])[run] if len(u) else u
    up = v > u
    smaller = np.add.reduceat((~up).astype(np.int64), start) if len(u) else u
    _write(task, v[up], m[up])
    return _Counts(len(edges), int(up.sum()), int((up & (m < u)).sum()), int((smaller > 1).sum()))


def _small_star(task: _Task) -> _Counts:
    """Node u links itself and its smaller neighbours to the smallest of them; both directions out."""
    edges = _read(task)
    u, v = _sorted_unique(edges["a"], edges["b"])
    start, run = _runs(u)
    m = v[start]   # every record here has v < u, and the run is sorted by v
    nodes = np.concatenate([v, u[start]])
    roots = np.concatenate([m[run], m])
    link = nodes != roots
    nodes, roots = nodes[link], roots[link]
    _write(task, np.concatenate([nodes, roots]), np.concatenate([roots, nodes]))
    return _Counts(len(edges), len(u), len(u) - len(start), 0)


def _labels(task: _Task) -> _Counts:
    """The converged stars' (leaf, centre) records -> LABELS partitioned by the leaf's owner."""
    edges = _read(task)
    node, root = _sorted_unique(edges["a"], edges["b"])
    if np.any(node[1:] == node[:-1]):
        raise RuntimeError(f"{task.name}: a node with two roots; the stars did not converge")
    labels = np.empty(len(node), LABELS)
    labels["node"], labels["root"] = node, root
    write_partitioned(task.output, labels, node >> OWNER_SHIFT, task.owners)
    return _Counts(len(labels), 0, 0, 0)
