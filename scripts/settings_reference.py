"""Write the settings table of docs/settings.md from src/config.py's Settings (`make docs` runs it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from src.config import settings_reference

PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
GENERATED = re.compile(r"(<!-- generated from .*? -->\n)(.*?)(\n<!-- end of the generated table -->)", re.S)


def render(page: str) -> str:
    """The page with its generated table replaced by the one the settings give now."""
    return GENERATED.sub(lambda m: m.group(1) + settings_reference() + m.group(3), page, count=1)


if __name__ == "__main__":
    PAGE.write_text(render(PAGE.read_text()))
    sys.exit(0)
