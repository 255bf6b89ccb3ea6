"""`python -m src.model.train_script`: `ml-service train` (src/cli/train.py), under the name the project
started with."""

import sys

from src.cli.train import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m src.model.train_script"))
