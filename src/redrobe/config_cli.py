"""`redrobe params-check [PARAMS]`: validate a params file and list every problem."""

from __future__ import annotations

import sys

from redrobe.config import ConfigError, load_params


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "params.yaml"
    try:
        load_params(path)
    except ConfigError as exc:
        print(f"redrobe params-check: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: ok")
    return 0
