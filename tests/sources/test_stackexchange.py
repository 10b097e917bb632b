"""StackExchange Posts.xml: questions with answers by score, HTML stripped, bounded memory."""

import io
import xml.etree.ElementTree as ET

import pytest

from redrobe.sources.base import Origin
from redrobe.sources.stackexchange import html_to_text, parse_tags, post_documents, question_text

ORIGIN = Origin("dumps/cs.stackexchange.com/Posts.xml", "12" * 32)

# As the dump writes it: one <row/> per post, bodies HTML-escaped, answers after their
# question but interleaved with later questions; a tag wiki (PostTypeId 4) and an answer
# whose question was deleted from the dump.
POSTS = b"""<?xml version="1.0" encoding="utf-8"?>
<posts>
  <row Id="1" PostTypeId="1" AcceptedAnswerId="4" CreationDate="2012-03-06T19:06:06.177" Score="12" ViewCount="400" Body="&lt;p&gt;Is the halting problem &lt;em&gt;decidable&lt;/em&gt; for &lt;code&gt;while&lt;/code&gt; programs?&lt;/p&gt;&#xA;" OwnerUserId="7" Title="Halting for while &amp;amp; loop programs" Tags="&lt;computability&gt;&lt;halting-problem&gt;" AnswerCount="3" CommentCount="0" ContentLicense="CC BY-SA 3.0" />
  <row Id="2" PostTypeId="1" CreationDate="2012-03-06T19:10:00.000" Score="3" Body="&lt;p&gt;What is a DFA?&lt;/p&gt;" Title="DFA basics: Set&lt;State&gt;" Tags="|automata|" AnswerCount="1" ContentLicense="CC BY-SA 3.0" />
  <row Id="3" PostTypeId="2" ParentId="1" CreationDate="2012-03-06T19:20:00.000" Score="5" Body="&lt;p&gt;No: reduce from the general case.&lt;/p&gt;" />
  <row Id="4" PostTypeId="2" ParentId="1" CreationDate="2012-03-06T19:30:00.000" Score="9" Body="&lt;p&gt;It is undecidable.&lt;/p&gt;&#xA;&lt;pre&gt;&lt;code&gt;while (x) { x = f(x); }&#xA;&lt;/code&gt;&lt;/pre&gt;" />
  <row Id="5" PostTypeId="4" Score="0" Body="&lt;p&gt;Tag wiki excerpt&lt;/p&gt;" />
  <row Id="6" PostTypeId="2" ParentId="2" Score="1" Body="&lt;p&gt;A finite automaton.&lt;/p&gt;" />
  <row Id="7" PostTypeId="2" ParentId="1" CreationDate="2013-01-01T00:00:00.000" Score="5" Body="&lt;ul&gt;&lt;li&gt;Rice&amp;#39;s theorem&lt;/li&gt;&lt;li&gt;diagonalisation&lt;/li&gt;&lt;/ul&gt;" />
  <row Id="8" PostTypeId="2" ParentId="99" Score="2" Body="&lt;p&gt;Answer to a deleted question.&lt;/p&gt;" />
</posts>
"""  # noqa: E501  (rows verbatim, one per line, as the dump writes them)


def test_html_to_text_and_tags():
    assert html_to_text("<p>a &amp; <b>b</b></p><p>c<br>d</p>") == "a & b\n\nc\nd"
    assert parse_tags("<c++><templates>") == ["c++", "templates"]
    assert parse_tags("|automata|dfa|") == ["automata", "dfa"] and parse_tags(None) == []


def test_one_document_per_question_with_answers_by_score_then_id(tmp_path):
    docs = list(post_documents(io.BytesIO(POSTS), ORIGIN, "stackexchange",
                               site="cs.stackexchange.com", workdir=str(tmp_path)))
    halting, dfa, orphan = docs
    assert halting.text == question_text(
        "Halting for while & loop programs",
        "Is the halting problem decidable for while programs?",
        ["It is undecidable.\n\nwhile (x) { x = f(x); }",       # score 9
         "No: reduce from the general case.",                   # score 5, id 3
         "- Rice's theorem\n\n- diagonalisation"])              # score 5, id 7
    assert halting.text.startswith("Q:\n\nHalting for while & loop programs\n\nIs the")
    assert halting.meta["url"] == "https://cs.stackexchange.com/questions/1"
    assert halting.meta["score"] == 12 and halting.meta["tags"] == ["computability",
                                                                     "halting-problem"]
    assert halting.meta["answer_count"] == 3 and halting.meta["accepted_answer_id"] == 4
    assert halting.meta["timestamp"] == "2012-03-06T19:06:06.177"
    assert halting.meta["license"] == "CC BY-SA 3.0" and halting.meta["provenance"]["post"] == 1
    assert dfa.text == "Q:\n\nDFA basics: Set<State>\n\nWhat is a DFA?\n\nA:\n\nA finite automaton."
    assert orphan.extra["error"] == f"{ORIGIN.file}: answer 8: its question 99 is not in the file"
    assert list(tmp_path.iterdir()) == []  # the spill file is gone


def test_no_site_no_url_and_malformed_xml_raises():
    (first, *_) = post_documents(io.BytesIO(POSTS), ORIGIN, "stackexchange")
    assert "url" not in first.meta
    with pytest.raises(ET.ParseError):
        list(post_documents(io.BytesIO(POSTS[:-20]), ORIGIN, "stackexchange"))
