"""`python -m src.cli`: the `ml-service` command from a checkout."""

import sys

from src.cli import main

sys.exit(main())
