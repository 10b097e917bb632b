"""Fixtures for the dedup tests: deterministic prose and a shard-writing helper."""

import random

import pytest

from redrobe.documents import Document, ShardWriter, shard_path

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "pe", "dan", "or", "el", "um", "zi"]


def make_prose(seed: int, words: int = 300) -> str:
    """A deterministic text of ``words`` pseudo-words drawn from ~1000 distinct ones."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
                    for _ in range(3000)})
    return " ".join(rng.choice(vocab) for _ in range(words))


def replace_words(text: str, positions: list[int], new: str = "xyzzy") -> str:
    """``text`` with the words at ``positions`` replaced by ``new``."""
    words = text.split()
    for p in positions:
        words[p] = new
    return " ".join(words)


@pytest.fixture
def prose():
    """prose(seed, words=300): deterministic pseudo-English text."""
    return make_prose


@pytest.fixture
def change_words():
    """change_words(text, positions): the text with those words replaced."""
    return replace_words


@pytest.fixture
def write_shards(tmp_path):
    """write_shards({("books", 0): [(id, text), ...], ...}) -> root dir of the shards."""

    def write(layout: dict[tuple[str, int], list[tuple[str, str]]]):
        root = tmp_path / "shards"
        for (slice_name, index), docs in layout.items():
            with ShardWriter(shard_path(root, slice_name, index)) as w:
                for doc_id, text in docs:
                    w.write(Document(id=doc_id, text=text, source=slice_name))
        return root

    return write
