"""Byte-level BPE tokenizer: exact round trip, HF loading, special tokens, determinism."""

import hashlib
import subprocess
import sys

import pytest

from redrobe.tokenizer import (
    BOS_TOKEN,
    EOS_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    UNK_TOKEN,
    document_encoder,
    encode_texts,
    load_tokenizer,
    save_tokenizer,
    special_ids,
    tokenizer_file,
    train_bpe,
    train_tokenizer,
)

CORPUS = [
    f"Document {i}: the quick brown fox jumps over the lazy dog; naïve café, "
    f"Übermaß, 東京 と 大阪, emoji 🤖 #{i * 7}.\n    def f(x):\n\treturn x ** {i}"
    for i in range(120)
]
UNICODE = [
    "  leading spaces, trailing space ",
    "naïve café — “quotes” … and e\u0301 (combining accent)",
    "日本語のテキスト、中文文本, 한국어 텍스트",
    "emoji 🤖👩‍👩‍👧 and a lone tab\tand\r\nwindows newline",
    "bytes never seen in training: ☃ ∮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "",
]
SCRIPT = """
import hashlib, sys
sys.path[:0] = {path!r}
from redrobe.tokenizer import train_bpe
corpus = {corpus!r}
print(hashlib.sha256(train_bpe(iter(corpus), 400, 2).to_str().encode()).hexdigest())
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    save_tokenizer(train_tokenizer(iter(CORPUS), vocab_size=400, min_frequency=2), path)
    return path


def test_special_tokens_take_the_first_ids(saved):
    ids = special_ids(document_encoder(tokenizer_file(saved)))
    assert ids == {"bos": 0, "eos": 1, "unk": 2, "pad": 3}
    assert SPECIAL_TOKENS == (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, PAD_TOKEN)


def test_vocab_size_is_reached_on_a_rich_corpus(saved):
    assert len(load_tokenizer(saved)) == 400


@pytest.mark.parametrize("text", UNICODE)
def test_round_trip_is_exact(saved, text):
    tok = load_tokenizer(saved)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    encoder = document_encoder(tokenizer_file(saved))
    assert encoder.decode(encode_texts(encoder, [text])[0]) == text


def test_auto_tokenizer_loads_the_saved_directory(saved):
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(str(saved))
    assert (auto.bos_token, auto.eos_token, auto.unk_token, auto.pad_token) == SPECIAL_TOKENS
    assert (auto.bos_token_id, auto.eos_token_id, auto.pad_token_id) == (0, 1, 3)
    encoder = document_encoder(tokenizer_file(saved))
    text = CORPUS[3]
    assert auto.encode(text, add_special_tokens=False) == encode_texts(encoder, [text])[0]


def test_document_encoder_never_emits_special_ids(saved):
    encoder = document_encoder(tokenizer_file(saved))
    text = f"a page quoting {BOS_TOKEN} and {EOS_TOKEN} and {PAD_TOKEN}"
    ids = encode_texts(encoder, [text])[0]
    assert not set(ids) & {0, 1, 2, 3}
    assert encoder.decode(ids) == text


def test_training_is_deterministic_in_process(tmp_path, saved):
    save_tokenizer(train_tokenizer(iter(CORPUS), vocab_size=400, min_frequency=2), tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == (saved / name).read_bytes()


def test_training_is_deterministic_across_processes_hash_seeds_and_threads():
    script = SCRIPT.format(path=sys.path, corpus=CORPUS)
    digests = set()
    for seed, threads in (("1", "1"), ("2", "2")):
        env = {"PYTHONHASHSEED": seed, "RAYON_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, check=True)
        digests.add(out.stdout.strip())
    here = hashlib.sha256(train_bpe(iter(CORPUS), 400, 2).to_str().encode()).hexdigest()
    assert digests == {here}


def test_min_frequency_limits_merges():
    rare = train_bpe(iter(["abcdef ghijkl"]), vocab_size=400, min_frequency=2)
    assert rare.get_vocab_size() == len(SPECIAL_TOKENS) + 256  # no pair occurs twice
