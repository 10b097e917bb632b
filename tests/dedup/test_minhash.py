"""MinHash signatures and LSH band keys (redrobe.dedup.minhash)."""

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from redrobe.config import MinHashParams
from redrobe.dedup import minhash
from redrobe.dedup.minhash import MinHasher, shingles


@pytest.fixture(scope="module")
def hasher():
    return MinHasher.from_params(MinHashParams())


def shares_a_band(hasher, a: str, b: str) -> bool:
    return bool((hasher.band_keys(hasher.signature(a)) == hasher.band_keys(hasher.signature(b))).any())


def test_shingles_are_word_ngrams():
    assert list(shingles("a b c d e".split(), 3)) == [b"a b c", b"b c d", b"c d e"]


def test_short_document_is_one_shingle():
    assert list(shingles(["tiny", "doc"], 13)) == [b"tiny doc"]
    assert list(shingles([], 13)) == []


def test_params_reach_the_hasher(prose):
    h = MinHasher.from_params(MinHashParams(ngram=5, num_perm=64, bands=8, rows=8, seed=7))
    sig = h.signature(prose(1))
    assert (h.ngram, h.seed, len(sig.hashvalues), sig.seed) == (5, 7, 64, 7)
    assert h.band_keys(sig).shape == (8,)


def test_too_many_bands_rejected():
    with pytest.raises(ValueError, match="exceeds num_perm"):
        MinHasher(num_perm=64, bands=9, rows=13)


@pytest.mark.parametrize("positions", [[150], [100, 101, 102], [0, 299], [3, 296]],
                         ids=["one-word", "three-adjacent", "first-and-last", "near-the-ends"])
def test_planted_near_duplicates_share_a_band(hasher, positions, prose, change_words):
    base = prose(11)
    copy = change_words(base, positions)
    assert copy != base
    assert hasher.signature(base).jaccard(hasher.signature(copy)) > 0.8
    assert shares_a_band(hasher, base, copy)


def test_unrelated_texts_share_no_band(hasher, prose):
    texts = [prose(seed) for seed in range(20, 30)]
    keys = np.vstack([hasher.band_keys(hasher.signature(t)) for t in texts])
    for band in range(keys.shape[1]):
        assert len(set(keys[:, band].tolist())) == len(texts)


def test_normalization_applies_before_shingling(hasher, prose):
    base = prose(12)
    noisy = "  " + base.upper().replace(" ", " ,  ") + "!!"
    assert hasher.signature(base) == hasher.signature(noisy)


def test_no_words_no_signature(hasher):
    assert hasher.signature("") is None
    assert hasher.signature(" ... !!! ") is None


def test_signatures_are_deterministic(hasher, prose):
    text = prose(13)
    again = MinHasher.from_params(MinHashParams())
    assert np.array_equal(hasher.signature(text).hashvalues, again.signature(text).hashvalues)
    assert np.array_equal(hasher.band_keys(hasher.signature(text)), again.band_keys(again.signature(text)))


def test_signature_is_pinned():
    # Golden values: a change here means every dedup output changes (datasketch scheme,
    # hash function or shingling changed); update only on purpose.
    sig = MinHasher().signature("the quick brown fox jumps over the lazy dog " * 3)
    assert sig.hashvalues[:4].tolist() == [739681729, 933444269, 285762281, 953363643]


def test_chunked_hashing_equals_one_batch(hasher, monkeypatch, prose):
    monkeypatch.setattr(minhash, "CHUNK", 7)
    text = prose(14, words=200)
    reference = MinHash(num_perm=128, seed=42, scheme=minhash.SCHEME)
    reference.update_batch(list(shingles(text.split(), 13)))
    assert np.array_equal(hasher.signature(text).hashvalues, reference.hashvalues)


def test_band_keys_agree_with_datasketch_lsh(hasher, prose, change_words):
    # Our band buckets must give exactly the candidate pairs of datasketch's MinHashLSH
    # with the same banding (9 bands x 13 rows).
    base, other = prose(31), prose(32)
    texts = [base, change_words(base, [40]), change_words(base, [10, 200, 201]), other,
             change_words(other, [5, 6, 7, 8]), prose(33), base.upper()]
    sigs = [hasher.signature(t) for t in texts]
    lsh = MinHashLSH(num_perm=128, params=(9, 13))
    for i, sig in enumerate(sigs):
        lsh.insert(i, sig)
    expected = {(i, j) for i, sig in enumerate(sigs) for j in lsh.query(sig) if i < j}
    keys = [hasher.band_keys(s) for s in sigs]
    ours = {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
            if (keys[i] == keys[j]).any()}
    assert ours == expected
    assert {(0, 1), (0, 6), (3, 4)} <= ours and not any(5 in p for p in ours)
