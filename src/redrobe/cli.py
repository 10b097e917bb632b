"""`redrobe <command>`: the one dispatch table of the pipeline.

Stage commands are the stages of :data:`redrobe.stages.registry.STAGES`, named as in
dvc.yaml (a contract test keeps them in sync); each runs ``redrobe.stages.<module>:main``,
imported lazily so ``redrobe --help`` stays fast.

    redrobe --help
    redrobe clean --params params.yaml --input data/raw --output data/interim/clean ...
    redrobe params-check params.yaml
"""

from __future__ import annotations

import importlib
import sys

from redrobe.stages.registry import STAGES

TOOLS = {
    "params-check": ("redrobe.config_cli", "main"),
    "language-thresholds": ("redrobe.thresholds_cli", "main"),   # clean.language_thresholds, FineWeb-2
    "lineage": ("redrobe.lineage_cli", "main"),
    "audit": ("redrobe.stages.audit", "main"),          # human review round-trip, not a DVC stage
    "reproduce": ("redrobe.tables.runner", "main"),     # paper tables (their own generated dvc.yaml)
    "serve": ("redrobe.serve", "main"),                 # MLflow / Prefect server, credentials beyond loopback
}


def _usage() -> str:
    stages = "\n".join(f"  {name}" for name in STAGES)
    tools = "\n".join(f"  {name}" for name in TOOLS)
    return (f"usage: redrobe <command> [options]\n\npipeline stages (dvc.yaml):\n{stages}\n\n"
            f"tools:\n{tools}\n\nrun `redrobe <command> --help` for a command's options")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command in STAGES:
        module, func = STAGES[command].entry, "main"
    elif command in TOOLS:
        module, func = TOOLS[command]
    else:
        print(f"redrobe: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
