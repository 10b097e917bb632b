"""Ingest adapters: turn real source formats into :class:`~redrobe.documents.Document` records.

Modules, each usable on its own:

- ``base``       stable ids, origins, removal reasons, the keep/remove/quarantine routing
- ``sink``       per-slice output: rolling raw / removed / quarantine shards + ledger
- ``archive``    pinned PyPI distributions: download once, verify sha256, read members
- ``fileio``     input locations: local paths/globs and fsspec URLs, decompression, digests
- ``inputs``     files mode: each input's format and slice, corrupt inputs quarantined
- ``gutenberg``  Project Gutenberg text files: header meta, boilerplate stripped
- ``mediawiki``  MediaWiki XML dumps (mwxml) and wikitext → plain text (mwparserfromhell)
- ``warc``       HTML responses from WARC files, text records from WET files (warcio)
- ``webpage``    main-text extraction from HTML (trafilatura)
- ``latex``      arXiv LaTeX sources (.tex, directory, tar): RedPajama's arxiv cleaning
- ``stackexchange``  Posts.xml dumps: question + answers by score, HTML stripped
- ``code``       source files: language, vendored paths, binary detection, licenses
- ``codetree``   a directory of source files → github documents
- ``sample``     the embedded sample corpus built from pinned distributions
- ``multilingual``  real text in many languages and scripts from pinned distributions, a
  language-ID check set
- ``redpajama``  the user's RedPajama-format JSONL(.gz/.zst) / Parquet shards

The ``ingest`` stage (``redrobe ingest``) wires them to the output directories.
"""
