"""Stage tests run without MLflow: tracking is off for every test here (the tracking
tests start a real server themselves, in tests/tracking and the e2e tests)."""

import pytest


@pytest.fixture(autouse=True)
def tracking_off(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
