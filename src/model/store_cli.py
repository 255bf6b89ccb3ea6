"""`python -m src.model.store_cli`: the model store's command line (src/store/cli.py), kept at its first path."""

import sys

from src.store.cli import main

if __name__ == "__main__":
    sys.exit(main())
