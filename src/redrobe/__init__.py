"""redrobe: a reproducible RedPajama-style data-to-weights pipeline.

Run `redrobe --help` for the stage commands, or `python -m flows.pipeline` from the
repository root for the whole orchestrated pipeline.
"""

__version__ = "0.1.0"

#: RedPajama-1T slice names, in the order RedPajama lists them.
SLICES = ("common_crawl", "c4", "github", "books", "arxiv", "wikipedia", "stackexchange")
