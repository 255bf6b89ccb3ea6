"""`python -m src.serve`: `ml-service serve` (src/cli/serve.py), the image's command."""

import sys

from src.cli.serve import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m src.serve"))
