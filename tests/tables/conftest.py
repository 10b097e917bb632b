"""Fixtures for the paper-table tests: a small corpus, a tokenizer and a table Context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from redrobe.config import params_from_dict
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.tables.spec import Context, TableSpec
from redrobe.tokenizer import TOKENIZER_FILE, train_bpe

MakeContext = Callable[..., Context]


def write_corpus(root: Path, docs: Sequence[Document]) -> Path:
    """One shard per slice under ``root`` (the layout ingest writes)."""
    by_slice: dict[str, list[Document]] = {}
    for doc in docs:
        by_slice.setdefault(doc.source, []).append(doc)
    for name, items in sorted(by_slice.items()):
        with ShardWriter(shard_path(root, name, 0)) as writer:
            writer.write_all(items)
    return root


@pytest.fixture
def make_context(tmp_path: Path) -> MakeContext:
    """make_context(spec, docs, settings={...}, params={...}) -> Context on those docs.

    ``params`` is merged over the defaults (e.g. {"shared": {"val_fraction": 0.2}});
    ``settings`` becomes params.tables.<spec.key>. The tokenizer (vocab 320) is trained on
    all the documents' text.
    """
    def make(spec: TableSpec, docs: Sequence[Document], settings: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None, vocab_size: int = 320) -> Context:
        raw = dict(params or {})
        raw["tables"] = {spec.key: settings or {}}
        resolved = params_from_dict(raw)
        corpus = write_corpus(tmp_path / "corpus", docs)
        tokenizer = tmp_path / TOKENIZER_FILE
        train_bpe((d.text for d in docs), vocab_size, 2).save(str(tokenizer))
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        return Context(params=resolved, settings=spec.load_settings(resolved), scale="test",
                       work=work, corpus=corpus, tokenizer_path=tokenizer)
    return make
