"""Status: one enum for a document's fate, written exactly as the plain strings it replaced."""

import csv
import io
import json

import pyarrow as pa
import pytest

from redrobe.documents import Status
from redrobe.sources import base
from redrobe.text import rules


def test_values_are_the_strings_outputs_use():
    assert [s.value for s in Status] == ["kept", "removed", "quarantined"]


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_written_like_its_value(status):
    value = status.value
    assert status == value and hash(status) == hash(value) and {value: 1}[status] == 1
    # every formatting route on purpose (str, f-string, str.format, %): not a style slip
    assert str(status) == f"{status}" == "{}".format(status) == "%s" % status == value  # noqa: UP031, UP032
    assert json.dumps({status: [status]}) == json.dumps({value: [value]})
    out = io.StringIO()
    csv.writer(out).writerow([status])
    assert out.getvalue() == f"{value}\r\n"
    assert pa.array([status]).equals(pa.array([value]))


def test_the_stage_modules_name_the_same_members():
    assert (base.KEPT, base.REMOVED, base.QUARANTINED) == tuple(Status)
    assert all(a is b for a, b in zip((rules.KEPT, rules.REMOVED, rules.QUARANTINED), Status))
