"""MediaWiki dumps from files (plain or .bz2, local or fsspec) as documents.

The second test re-compresses the first pages of the real enwiki sample in the
pinned gensim wheel when a pipeline run has put it in ``.cache/dists``.
"""

import bz2
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import fsspec
import pytest

from redrobe.sources import sample
from redrobe.sources.base import WIKI_NON_ARTICLE, WIKI_REDIRECT, Origin
from redrobe.sources.fileio import expand
from redrobe.sources.mediawiki import dump_documents

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "dists"


def page(page_id: int, title: str, text: str, ns: int = 0, redirect: str = "",
         timestamp: str = "2023-03-20T10:00:00Z") -> str:
    redirect_tag = f'<redirect title="{escape(redirect)}" />' if redirect else ""
    return (f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_tag}"
            f"<revision><id>{page_id}00</id><timestamp>{timestamp}</timestamp>"
            f"<contributor><username>Ed</username><id>1</id></contributor>"
            f"<model>wikitext</model><format>text/x-wiki</format>"
            f'<text xml:space="preserve">{escape(text)}</text></revision></page>\n')


DUMP = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" '
        'xml:lang="de"><siteinfo><sitename>Wikipedia</sitename><dbname>dewiki</dbname>'
        "<base>https://de.wikipedia.org/wiki/Wikipedia:Hauptseite</base>"
        '<namespaces><namespace key="0" case="first-letter" /></namespaces></siteinfo>\n'
        + page(1, "Weser", "Die '''Weser''' ist ein [[Fluss]] in [[Deutschland|Deutschland]].")
        + page(2, "Fluß", "#WEITERLEITUNG [[Fluss]]", redirect="Fluss")
        + page(3, "Diskussion:Weser", "Quelle?", ns=1)
        + page(4, "Elbe", "Die '''Elbe''' fließt in die Nordsee.", timestamp="2024-01-01T00:00:00Z")
        + "</mediawiki>\n").encode()


def test_bz2_dump_from_a_memory_url():
    fs = fsspec.filesystem("memory")
    fs.pipe("/wiki/dewiki-pages-articles.xml.bz2", bz2.compress(DUMP))
    try:
        (source,) = expand("memory://wiki/dewiki-pages-articles.xml.bz2")
        origin = Origin(source.name, source.sha256())
        with source.open() as fh:
            docs = list(dump_documents(fh, origin, "wikipedia"))
    finally:
        fs.rm("/wiki", recursive=True)
    weser, redirect, talk, elbe = docs
    assert weser.text == "Die Weser ist ein Fluss in Deutschland." and not weser.extra
    assert weser.meta["url"] == "https://de.wikipedia.org/wiki/Weser"
    assert weser.meta["language"] == "de" and weser.meta["timestamp"] == "2023-03-20T10:00:00Z"
    assert weser.meta["license"] == "CC-BY-SA-3.0" and elbe.meta["license"] == "CC-BY-SA-4.0"
    assert weser.meta["provenance"]["file"] == "memory:///wiki/dewiki-pages-articles.xml.bz2"
    assert redirect.extra["reason"] == WIKI_REDIRECT and talk.extra["reason"] == WIKI_NON_ARTICLE


@pytest.mark.skipif(not (CACHE / sample.GENSIM.filename).exists(),
                    reason="the pinned gensim wheel is not in .cache/dists")
def test_real_enwiki_pages_recompressed(tmp_path):
    with zipfile.ZipFile(CACHE / sample.GENSIM.filename) as wheel:
        xml = bz2.decompress(wheel.read(sample.WIKI_MEMBER)).decode("utf-8")
    cut = 0
    for _ in range(12):  # the first twelve pages, then close the dump
        cut = xml.index("</page>", cut) + len("</page>")
    path = tmp_path / "enwiki-part.xml.bz2"
    path.write_bytes(bz2.compress((xml[:cut] + "\n</mediawiki>\n").encode()))
    (source,) = expand(str(path))
    origin = Origin(source.name, source.sha256())
    with source.open() as fh:
        docs = list(dump_documents(fh, origin, "wikipedia"))
    assert len(docs) == 12 and len({d.id for d in docs}) == 12
    articles = [d for d in docs if not d.extra]
    assert articles and all(d.meta["url"].startswith("https://en.wikipedia.org/wiki/")
                            for d in articles)
    assert all("[[" not in d.text and "{{" not in d.text for d in articles)
    assert {d.extra.get("reason") for d in docs} <= {None, WIKI_REDIRECT, WIKI_NON_ARTICLE}
