"""Ingest adapters: turn real source formats into :class:`~redrobe.documents.Document` records.

Modules, each usable on its own:

- ``base``       stable ids, removal reasons, the keep/remove/quarantine routing
- ``sink``       per-slice output: rolling raw / removed / quarantine shards + ledger
- ``archive``    pinned PyPI distributions: download once, verify sha256, read members
- ``gutenberg``  strip Project Gutenberg headers, footers and small-print blocks
- ``mediawiki``  MediaWiki XML dumps (mwxml) and wikitext → plain text (mwparserfromhell)
- ``warc``       HTML responses from WARC files (warcio)
- ``webpage``    main-text extraction from HTML (trafilatura)
- ``code``       source files: language, vendored paths, binary detection, licenses
- ``sample``     the embedded sample corpus built from pinned distributions
- ``redpajama``  the user's RedPajama-format JSONL(.gz/.zst) / Parquet shards

The ``ingest`` stage (``redrobe ingest``) wires them to the output directories.
"""
