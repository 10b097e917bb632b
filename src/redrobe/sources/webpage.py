"""Main text and metadata of a web page, extracted with trafilatura.

    page = extract_page(html_bytes, url="https://example.org/a")
    page.text, page.title, page.url, page.date

Settings are fixed for reproducibility: no extraction timeout (a slow machine
must not change the output), no cross-document deduplication, comments left out,
tables kept (as trafilatura's text output renders them), and htmldate's
``max_date`` pinned instead of "today", so the same page gives the same metadata
on any day.
"""

from __future__ import annotations

import functools
from configparser import ConfigParser
from dataclasses import dataclass

import trafilatura
from trafilatura.settings import use_config

#: latest publication date htmldate may return (instead of the run date)
MAX_DATE = "2030-12-31"


@dataclass(frozen=True)
class Page:
    text: str             # "" when trafilatura finds no main text
    title: str | None
    url: str | None
    date: str | None      # publication date found in the page (YYYY-MM-DD)


@functools.lru_cache(maxsize=1)
def _config() -> ConfigParser:
    config = use_config()
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    return config


def extract_page(html: bytes | str, url: str | None = None) -> Page:
    """Extract one page; raises whatever trafilatura raises on input it cannot parse."""
    result = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True,
        deduplicate=False, config=_config(),
        date_extraction_params={"extensive_search": True, "original_date": True,
                                "max_date": MAX_DATE})
    if result is None:
        return Page(text="", title=None, url=url, date=None)
    return Page(text=(result.text or "").strip(), title=result.title or None,
                url=result.url or url, date=result.date or None)
