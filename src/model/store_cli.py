"""`python -m src.model.store_cli`: `ml-service models` (src/cli/models.py), under the name the project
started with."""

import sys

from src.cli.models import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m src.model.store_cli"))
