"""The ledger's identity check: in == out + removed + quarantined."""

import pytest

from redrobe.accounting import AccountingError, Ledger, check_accounting


def test_balanced_ledger():
    ledger = Ledger()
    for _ in range(3):
        ledger.seen("books", 10)
    ledger.kept("books", 10)
    ledger.removed("books", "gopher_short_doc")
    ledger.quarantined("books")
    ledger.check()
    payload = {"accounting": ledger.as_dict()}
    assert check_accounting(payload) == []
    assert payload["accounting"]["slices"]["books"]["removed_by_reason"] == {"gopher_short_doc": 1}


def test_lost_document_is_an_error():
    ledger = Ledger()
    ledger.seen("c4")
    ledger.seen("c4")
    ledger.kept("c4")
    with pytest.raises(AccountingError, match="slice 'c4': in=2 != out=1"):
        ledger.check()


def test_merge_adds_counts():
    a, b = Ledger(), Ledger()
    a.seen("c4")
    a.kept("c4")
    b.seen("c4")
    b.removed("c4", "x")
    a.merge(b)
    assert a.as_dict()["total"]["in"] == 2
    assert a.as_dict()["slices"]["c4"]["removed"] == 1
