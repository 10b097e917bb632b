"""The dedup section of params.yaml: defaults follow RedPajama-V2, bad values are named."""

import pytest

from redrobe.config import ConfigError, Params, params_from_dict


def test_defaults_are_the_redpajama_v2_signatures_banded_for_recall():
    # RedPajama-V2's signatures; 16 x 8 bands for candidates (a pair at J = 0.85 shares a
    # band with probability 0.994), verified at SlimPajama's Jaccard 0.8
    m = Params().dedup.minhash
    assert (m.ngram, m.num_perm, m.bands, m.rows, m.seed) == (13, 128, 16, 8, 42)
    assert 1 - (1 - 0.85 ** m.rows) ** m.bands >= 0.99
    assert (m.verify, m.threshold) == (True, 0.8)


@pytest.mark.parametrize("minhash, problem", [
    ({"bands": 17}, "dedup.minhash.bands: bands * rows must be <= num_perm"),
    ({"rows": 0}, "dedup.minhash.rows: must be >= 1"),
    ({"ngram": 0}, "dedup.minhash.ngram: must be >= 1"),
    ({"seed": -1}, "dedup.minhash.seed: must be in [0, 2**32)"),
])
def test_bad_minhash_values_are_reported_with_their_key(minhash, problem):
    with pytest.raises(ConfigError) as err:
        params_from_dict({"dedup": {"minhash": minhash}})
    assert problem in err.value.problems
