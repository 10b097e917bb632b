"""Partitioned connected components (redrobe.dedup.components) against the in-process UnionFind."""

import uuid
from concurrent.futures import ProcessPoolExecutor

import fsspec
import numpy as np
import pytest

from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.components import EDGES, LABELS, connected_components, read_labels
from redrobe.partfile import get_bytes, join, read_all, read_partition, write_partitioned


@pytest.fixture
def memdir():
    """A fresh memory:// folder, removed afterwards (the memory filesystem is process-wide)."""
    url = f"memory://components-{uuid.uuid4().hex}"
    yield url
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def write_edges(base: str, a, b, parts: int, files: int = 2, seed: int = 0) -> list[str]:
    """The edges split over ``files`` EDGES files, each record in a random partition."""
    edges = np.empty(len(a), EDGES)
    edges["a"], edges["b"] = a, b
    rng = np.random.default_rng(seed)
    urls = []
    for i, chunk in enumerate(np.array_split(edges[rng.permutation(len(edges))], files)):
        url = join(base, "edges", f"{i:03d}.part")
        write_partitioned(url, chunk, rng.integers(0, parts, len(chunk)), parts)
        urls.append(url)
    return urls


def expected_labels(a, b) -> np.ndarray:
    """(node, root) of every linked node that is not its component's minimum, by UnionFind."""
    nodes, idx = np.unique(np.concatenate([a, b]), return_inverse=True)  # order-preserving ids
    uf = UnionFind(len(nodes))
    uf.union_pairs(idx[:len(a)], idx[len(a):])
    roots = nodes[uf.roots()]
    keep = roots != nodes
    labels = np.empty(int(keep.sum()), LABELS)
    labels["node"], labels["root"] = nodes[keep], roots[keep]
    return labels


def all_labels(result, owners: int) -> np.ndarray:
    labels = [read_labels(result.label_urls, owner) for owner in range(owners)]
    for owner, mine in enumerate(labels):
        assert ((mine["node"] >> 32) == owner).all()
    return np.concatenate(labels)


def components(base: str, a, b, parts: int, owners: int = 1, **kwargs):
    urls = write_edges(base, a, b, parts)
    result = connected_components(urls, join(base, "work"), parts, owners, **kwargs)
    return result, all_labels(result, owners)


def random_graph(seed: int, owners: int, rows: int = 300, edges: int = 400):
    """Sparse random links between documents of several shards (many small components)."""
    rng = np.random.default_rng(seed)
    def node(n):
        return (rng.integers(0, owners, n) << 32) | rng.integers(0, rows, n)
    return node(edges), node(edges)


@pytest.mark.parametrize("parts", [1, 3, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_graphs_match_union_find(memdir, seed, parts):
    a, b = random_graph(seed, owners=4)
    result, labels = components(memdir, a, b, parts, owners=4)
    want = expected_labels(a, b)
    assert labels.tobytes() == want.tobytes()
    assert result.nodes_labelled == len(want)
    assert result.edges_in == len(a)
    assert result.rounds == len(result.round_edges)


def test_each_partition_is_sorted_by_node(memdir):
    a, b = random_graph(5, owners=3)
    result, _ = components(memdir, a, b, parts=3, owners=3)
    for url in result.label_urls:
        for owner in range(3):
            nodes = read_partition(url, LABELS, owner)["node"]
            assert (np.diff(nodes) > 0).all()


def test_labels_are_the_same_for_any_parts_and_deterministic(memdir):
    a, b = random_graph(7, owners=5, rows=2000, edges=3000)
    runs = [components(join(memdir, str(parts)), a, b, parts, owners=5)[1].tobytes()
            for parts in (1, 2, 3, 7)]
    assert all(run == runs[0] for run in runs)
    again = [connected_components(write_edges(join(memdir, f"again{i}"), a, b, 3),
                                  join(memdir, f"again{i}", "work"), 3, 5) for i in range(2)]
    assert [get_bytes(u) for u in again[0].label_urls] == [get_bytes(u) for u in again[1].label_urls]


def test_shuffled_chain_converges_in_few_rounds(memdir):
    n = 10_000
    chain = np.random.default_rng(0).permutation(n)
    result, labels = components(memdir, chain[:-1], chain[1:], parts=3)
    assert result.rounds < 60
    assert labels["node"].tolist() == list(range(1, n))
    assert (labels["root"] == 0).all()


@pytest.mark.parametrize("centre", [0, 5000])
def test_big_star(memdir, centre):
    leaves = np.setdiff1d(np.arange(5001), [centre])
    result, labels = components(memdir, np.full(len(leaves), centre), leaves, parts=4)
    assert result.rounds <= 3
    assert labels["node"].tolist() == list(range(1, 5001))
    assert (labels["root"] == 0).all()
    assert result.largest_partition >= len(leaves)   # the centre's partition holds every edge


def test_duplicate_edges_and_self_loops(memdir):
    a = np.array([1, 2, 2, 1, 7, 9, 9, 4, 3], dtype=np.int64)
    b = np.array([2, 1, 1, 2, 7, 9, 3, 3, 4], dtype=np.int64)
    result, labels = components(memdir, a, b, parts=3)
    # 7 only links itself: alone, so not labelled; {3, 4, 9} keeps 3, {1, 2} keeps 1.
    assert labels.tolist() == [(2, 1), (4, 3), (9, 3)]
    assert result.edges_in == 9 and result.nodes_labelled == 3


def test_empty_input(memdir):
    empty = np.empty(0, np.int64)
    for urls in ([], write_edges(memdir, empty, empty, parts=3)):
        result = connected_components(urls, join(memdir, "work"), 3, 2)
        assert result.nodes_labelled == 0 and result.edges_in == 0
        assert all(len(read_all(u, LABELS)) == 0 for u in result.label_urls)
        assert len(all_labels(result, 2)) == 0


def test_local_workdir_keeps_only_the_labels(tmp_path):
    a, b = random_graph(3, owners=2)
    result, labels = components(str(tmp_path), a, b, parts=3, owners=2)
    assert labels.tobytes() == expected_labels(a, b).tobytes()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["labels"]


def test_memory_workdir_keeps_only_the_labels(memdir):
    a, b = random_graph(4, owners=2)
    components(memdir, a, b, parts=3, owners=2)
    fs, path = fsspec.core.url_to_fs(join(memdir, "work"))
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)] == ["labels"]


def test_process_pool_mapper(tmp_path):
    a, b = random_graph(6, owners=3)
    with ProcessPoolExecutor(2) as pool:
        def mapper(fn, tasks):
            return list(pool.map(fn, tasks))
        result, labels = components(str(tmp_path), a, b, parts=3, owners=3, mapper=mapper)
    assert labels.tobytes() == expected_labels(a, b).tobytes()
    assert result.nodes_labelled == len(labels)


@pytest.mark.parametrize("bad", [-1, 2 << 32])
def test_node_outside_the_owners_is_refused(memdir, bad):
    urls = write_edges(memdir, np.array([1, bad]), np.array([2, 3]), parts=2)
    with pytest.raises(ValueError, match="node ids"):
        connected_components(urls, join(memdir, "work"), 2, owners=2)


@pytest.mark.parametrize("parts", [1, 3, 11])
def test_inputs_with_another_partition_count_are_read_in_ranges(memdir, parts):
    owners = 3
    a, b = random_graph(7, owners)
    urls = write_edges(memdir, a, b, parts=7, files=3)
    result = connected_components(urls, join(memdir, f"work{parts}"), parts, owners, input_parts=7)
    np.testing.assert_array_equal(all_labels(result, owners), expected_labels(a, b))
    assert len(result.label_urls) == parts
