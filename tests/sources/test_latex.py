"""arXiv LaTeX sources: preamble, comments, bibliography and macros, single and multi-file."""

import gzip
import io
import tarfile

import pytest

from redrobe.sources.base import LATEX_NO_SECTION, Origin
from redrobe.sources.fileio import expand
from redrobe.sources.latex import (
    arxiv_id,
    clean_tex,
    collect_macros,
    expand_macros,
    main_file,
    paper_documents,
    read_paper,
    strip_comments,
)

MAIN = r"""\documentclass[11pt]{article}
\usepackage{amsmath,amssymb}
\newcommand{\R}{\mathbb{R}}
\newcommand\eps{\varepsilon}
\def\method{\textsc{RedRobe}}
\newcommand{\norm}[1]{\left\|#1\right\|}
% \newcommand{\unused}{commented out}
\title{Sharper Bounds for Curriculum Sampling}
\author{A. Author}
\begin{document}
\maketitle
\begin{abstract}
We study \method{} sampling.
\end{abstract}
\section{Introduction}
% TODO: rewrite this paragraph
Let $x \in \R^n$ and $\eps > 0$. We show that \method{} costs 5\% less. % reviewer 2
\input{sections/method}
\bibliographystyle{plain}
\bibliography{refs}
\end{document}
"""
METHOD = r"""\subsection{Method}
The bound $\norm{x} \le \eps$ holds.%
\begin{thebibliography}{9}
\bibitem{a} Should never appear.
\end{thebibliography}
"""

EXPECTED = r"""\section{Introduction}
Let $x \in \mathbb{R}^n$ and $\varepsilon > 0$. We show that \textsc{RedRobe}{} costs 5\% less.
\subsection{Method}
The bound $\norm{x} \le \varepsilon$ holds."""


def paper_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_strip_comments_keeps_escaped_percent_and_drops_comment_lines():
    tex = "a 5\\% b % note\n% whole line\n\nc\\\\% after a line break\n"
    assert strip_comments(tex) == "a 5\\% b\n\nc\\\\\n"


def test_macros_without_arguments_are_collected_and_expanded():
    macros = collect_macros(strip_comments(MAIN))
    assert macros == {"\\R": "\\mathbb{R}", "\\eps": "\\varepsilon",
                      "\\method": "\\textsc{RedRobe}"}  # \norm takes an argument
    assert expand_macros("\\R and \\Rbig, \\eps.", macros) == "\\mathbb{R} and \\Rbig, \\varepsilon."
    assert expand_macros("\\a", {"\\a": "\\a\\a"}).count("\\a") == 2 ** 8  # bounded rounds


def test_clean_tex_drops_preamble_comments_and_bibliography():
    text = clean_tex(MAIN.replace("\\input{sections/method}", METHOD))
    assert text == EXPECTED
    assert clean_tex("\\documentclass{article}\\begin{document}No sections.\\end{document}") is None


def test_main_file_is_the_one_with_documentclass():
    files = {"appendix.tex": "\\section{A}", "paper/main.tex": MAIN, "z.tex": "% \\documentclass"}
    assert main_file(files) == "paper/main.tex"
    assert main_file({"only.tex": "\\section{A}"}) == "only.tex"
    assert main_file({"a.tex": "\\section{A}", "b.tex": "\\section{B}"}) is None


def test_tar_gz_paper_with_inputs_becomes_one_document(tmp_path):
    path = paper_tar(tmp_path / "2303.01234v2.tar.gz",
                     {"main.tex": MAIN, "sections/method.tex": METHOD, "fig.pdf": "%PDF"})
    (source,) = expand(str(path))
    assert sorted(read_paper(source).files) == ["main.tex", "sections/method.tex"]
    (doc,) = paper_documents(source, Origin(source.name, "cd" * 32), "arxiv")
    assert doc.text == EXPECTED and doc.source == "arxiv" and not doc.extra
    assert doc.meta["arxiv_id"] == "2303.01234v2"
    assert doc.meta["url"] == "https://arxiv.org/abs/2303.01234v2"
    assert doc.meta["main_file"] == "main.tex"


def test_directory_single_tex_and_arxiv_gz_give_the_same_text(tmp_path):
    (tmp_path / "paper" / "sections").mkdir(parents=True)
    (tmp_path / "paper" / "main.tex").write_text(MAIN)
    (tmp_path / "paper" / "sections" / "method.tex").write_text(METHOD)
    single = MAIN.replace("\\input{sections/method}", METHOD)
    (tmp_path / "single.tex").write_text(single)
    (tmp_path / "hep-th9901001.gz").write_bytes(gzip.compress(single.encode()))
    for name in ("paper", "single.tex", "hep-th9901001.gz"):
        (source,) = expand(str(tmp_path / name))
        (doc,) = paper_documents(source, Origin(source.name, "ef" * 32), "arxiv")
        assert doc.text == EXPECTED, name
    assert arxiv_id("hep-th9901001.gz") == "hep-th9901001" and arxiv_id("paper") is None


def test_paper_without_sections_is_removed_and_without_main_is_quarantined(tmp_path):
    (tmp_path / "nosec.tex").write_text("\\documentclass{article}\\begin{document}Hi\\end{document}")
    (source,) = expand(str(tmp_path / "nosec.tex"))
    (doc,) = paper_documents(source, Origin(source.name, "00"), "arxiv")
    assert doc.extra["reason"] == LATEX_NO_SECTION
    paper_tar(tmp_path / "parts.tar.gz", {"a.tex": "\\section{A}", "b.tex": "\\section{B}"})
    (source,) = expand(str(tmp_path / "parts.tar.gz"))
    (doc,) = paper_documents(source, Origin(source.name, "00"), "arxiv")
    assert "no main .tex file" in doc.extra["error"] and source.name in doc.extra["error"]


def test_unreadable_tar_raises(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(gzip.compress(b"not a tar archive at all" * 40))
    (source,) = expand(str(tmp_path / "broken.tar.gz"))
    with pytest.raises(tarfile.ReadError):
        list(paper_documents(source, Origin(source.name, "00"), "arxiv"))
