"""Byte-level BPE tokenizer: training, saving and loading (HF ``tokenizers`` files).

The tokenizer is GPT-2 style byte-level BPE: text is split with the ByteLevel
pre-tokenizer (GPT-2 regex over the 256 byte symbols), so every string encodes
without unknown tokens and ``decode(encode(text)) == text`` exactly. Special tokens
``<s>`` (bos), ``</s>`` (eos), ``<unk>`` and ``<pad>`` take ids 0..3.

    tok = train_tokenizer(texts, vocab_size=8192, min_frequency=2)
    save_tokenizer(tok, "data/models/tokenizer")        # or tok.save_pretrained(dir)
    tok = load_tokenizer("data/models/tokenizer")       # == AutoTokenizer.from_pretrained
    encoder = document_encoder(tokenizer_file("data/models/tokenizer"))
    ids = encode_texts(encoder, ["some text"])          # what the bucket stage stores

Training is deterministic: the BPE trainer sorts its initial alphabet and breaks
merge ties by pair id, and word counts are order-independent sums, so the same texts
give a byte-identical ``tokenizer.json`` whatever the thread count or hash seed
(checked by tests/test_tokenizer.py in separate processes).

``transformers`` is imported lazily: it takes seconds to import, and the workers of
the bucket stage only need the fast ``tokenizers`` encoder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from redrobe.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
PAD_TOKEN = "<pad>"
#: in id order: the trainer gives special tokens the first ids
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, PAD_TOKEN)
TOKENIZER_FILE = "tokenizer.json"

def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on a stream of texts."""
    tok = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    # add_prefix_space=False keeps decode(encode(x)) == x (no invented leading space).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        # all 256 byte symbols, so bytes unseen in training still encode
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # the binding pulls texts in small buffers, so the stream is never materialized
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The HF ``transformers`` view of a trained tokenizer (what save_pretrained writes)."""
    from transformers import PreTrainedTokenizerFast

    # clean_up_tokenization_spaces=False: the default "cleanup" rewrites " ." to "."
    # and would break the exact round trip.
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS_TOKEN,
                                   eos_token=EOS_TOKEN, unk_token=UNK_TOKEN,
                                   pad_token=PAD_TOKEN, clean_up_tokenization_spaces=False)


def train_tokenizer(texts: Iterable[str], vocab_size: int,
                    min_frequency: int) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on ``texts`` and return it as a PreTrainedTokenizerFast."""
    return wrap(train_bpe(texts, vocab_size, min_frequency))


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | os.PathLike) -> Path:
    """Write HF files (tokenizer.json, tokenizer_config.json) into directory ``path``."""
    tokenizer.save_pretrained(str(path))
    return Path(path) / TOKENIZER_FILE


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer directory (``AutoTokenizer.from_pretrained``); InputError if unreadable."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load the tokenizer ({exc})") from exc


def tokenizer_file(path: str | os.PathLike) -> Path:
    """The ``tokenizer.json`` of a saved tokenizer directory."""
    return Path(path) / TOKENIZER_FILE


def document_encoder(path: str | os.PathLike) -> Tokenizer:
    """A fast encoder for document text, loaded from a ``tokenizer.json`` file.

    Special tokens written literally in a document (a web page quoting ``</s>``) are
    encoded as ordinary bytes, so the only eos in a token stream is the separator the
    bucket stage appends between documents.
    """
    tok = Tokenizer.from_file(str(path))
    tok.encode_special_tokens = True
    return tok


def encode_texts(encoder: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without bos/eos (callers add separators themselves)."""
    return [enc.ids for enc in encoder.encode_batch(list(texts), add_special_tokens=False)]


def token_counts(encoder: Tokenizer, texts: Sequence[str]) -> list[int]:
    """The number of tokens of each text, without bos/eos (the ids of :func:`encode_texts`);
    ``encode_batch_fast`` skips the character offsets, which counting does not need."""
    encode = getattr(encoder, "encode_batch_fast", encoder.encode_batch)
    return [len(enc.ids) for enc in encode(list(texts), add_special_tokens=False)]


def special_ids(encoder: Tokenizer) -> dict[str, int | None]:
    """{"bos": id, "eos": id, "unk": id, "pad": id} of a trained tokenizer."""
    names = ("bos", "eos", "unk", "pad")
    return {name: encoder.token_to_id(token) for name, token in zip(names, SPECIAL_TOKENS)}
