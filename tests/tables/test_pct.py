"""The tables' one percentage helper (redrobe.tables.spec.pct)."""

import pytest

from redrobe.tables import filter_ablation, lora_rank, rule_removal, slimpajama
from redrobe.tables.spec import pct


@pytest.mark.parametrize("part, whole, expected", [
    (1, 3, 33.33), (2, 3, 66.67), (0, 5, 0.0), (5, 5, 100.0), (3, 0, None), (0.5, 0.0, None),
    (1.25, 2.5, 50.0), (-1, 4, -25.0), (123_456_789, 987_654_321, 12.5)])
def test_pct(part, whole, expected):
    assert pct(part, whole) == expected


def test_every_table_uses_the_shared_helper():
    assert all(m.pct is pct for m in (filter_ablation, lora_rank, rule_removal, slimpajama))
