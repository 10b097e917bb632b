"""MediaWiki dumps: page reading, markup stripping and the wikipedia sample builder."""

import bz2
import io
from xml.sax.saxutils import escape

import pytest

from redrobe.errors import InputError
from redrobe.sources import sample
from redrobe.sources.base import WIKI_NON_ARTICLE, WIKI_REDIRECT, route
from redrobe.sources.mediawiki import page_url, read_dump, wikitext_to_text

ARTICLE = """\
{{Infobox river|name=Aa|length=42 km}}
'''Aa''' is a [[river]] in [[Germany|northern Germany]].<ref>{{cite web|url=http://x.org}}</ref> \
It has a [http://example.org official site] ({{lang-de|Aa}}).
[[File:Aa river.jpg|thumb|The Aa near [[Münster]]]]

== Course ==
The river flows &amp; meanders north.<br/>It joins the [[Ems]].
{| class="wikitable"
| Length || 42 km
|}

== See also ==
* [[List of rivers]]
=== Nested ===
more links

[[Category:Rivers of Germany]]
[[de:Aa (Fluss)]]
__NOTOC__
"""


def _page(page_id: int, title: str, text: str, ns: int = 0, redirect: str | None = None) -> str:
    redirect_tag = f'    <redirect title="{escape(redirect)}" />\n' if redirect else ""
    return f"""  <page>
    <title>{escape(title)}</title>
    <ns>{ns}</ns>
    <id>{page_id}</id>
{redirect_tag}    <revision>
      <id>{page_id * 100}</id>
      <timestamp>2016-04-22T10:19:33Z</timestamp>
      <contributor><username>Editor</username><id>7</id></contributor>
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text xml:space="preserve">{escape(text)}</text>
      <sha1>abc</sha1>
    </revision>
  </page>
"""


DUMP = f"""<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>enwiki</dbname>
    <base>https://en.wikipedia.org/wiki/Main_Page</base>
    <generator>MediaWiki 1.27.0-wmf.22</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
    </namespaces>
  </siteinfo>
{_page(10, "AccessibleComputing", "#REDIRECT [[Computer accessibility]]", redirect="Computer accessibility")}\
{_page(12, "Aa (river)", ARTICLE)}\
{_page(13, "Talk:Aa (river)", "Is this the right river?", ns=1)}\
</mediawiki>
"""


def test_read_dump_gives_site_and_latest_revision_of_each_page():
    site, pages = read_dump(io.BytesIO(DUMP.encode()))
    pages = list(pages)
    assert site.dbname == "enwiki" and site.language == "en"
    assert [p.page_id for p in pages] == [10, 12, 13]
    assert pages[0].redirect == "Computer accessibility"
    assert pages[1].redirect is None and pages[1].namespace == 0
    assert pages[1].timestamp == "2016-04-22T10:19:33Z" and pages[1].revision_id == 1200
    assert pages[2].namespace == 1


def test_wikitext_to_text_keeps_prose_and_drops_markup():
    assert wikitext_to_text(ARTICLE) == (
        "Aa is a river in northern Germany. It has a official site.\n\n"
        "Course\n\n"
        "The river flows & meanders north.\n"
        "It joins the Ems.")


def test_page_url_uses_the_site_base():
    assert page_url("https://en.wikipedia.org/wiki/Main_Page", "Aa (river)") == \
        "https://en.wikipedia.org/wiki/Aa_(river)"


def _gensim_wheel(make_archive, xml: bytes):
    return {"gensim": make_archive("gensim", "4.4.0", {sample.WIKI_MEMBER: bz2.compress(xml)},
                                   kind="wheel")}


def test_wikipedia_builder_routes_redirects_and_other_namespaces(make_archive):
    archives = _gensim_wheel(make_archive, DUMP.encode())
    docs = list(sample.wikipedia(archives))
    fates = [route(d, 10_000)[1].extra.get("reason") for d in docs]
    assert fates == [WIKI_REDIRECT, None, WIKI_NON_ARTICLE]
    article = docs[1]
    assert article.source == "wikipedia" and article.id.startswith("wikipedia/")
    assert article.text.startswith("Aa is a river in northern Germany.")
    assert article.meta["url"] == "https://en.wikipedia.org/wiki/Aa_(river)"
    assert article.meta["title"] == "Aa (river)" and article.meta["language"] == "en"
    assert article.meta["timestamp"] == "2016-04-22T10:19:33Z"
    prov = article.meta["provenance"]
    assert prov["distribution"] == "gensim==4.4.0" and prov["member"] == sample.WIKI_MEMBER
    assert prov["offset"] == 1 and prov["sha256"] == archives["gensim"].pin.sha256
    assert docs[0].text == "#REDIRECT [[Computer accessibility]]"  # removed, not lost
    # ids come from provenance, so a second read gives the same ids
    assert [d.id for d in sample.wikipedia(archives)] == [d.id for d in docs]


def test_a_truncated_dump_is_an_input_error_naming_the_member(make_archive):
    archives = _gensim_wheel(make_archive, DUMP.encode()[: len(DUMP) // 2])
    with pytest.raises(InputError, match="enwiki-latest-pages-articles1"):
        list(sample.wikipedia(archives))
