"""`python -m src.serve`: the production server (src/server/supervisor.py), the image's command."""

import sys

from src.server.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
