"""`python -m redrobe`: the same commands as the ``redrobe`` script (:func:`redrobe.cli.main`).

    python -m redrobe --help
    python -m redrobe clean --params params.yaml --input data/raw ...
"""

import sys

from redrobe.cli import main

if __name__ == "__main__":
    sys.exit(main())
