"""The architecture page names every package and the development page every module of src/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _packages() -> list[str]:
    return sorted(f"src/{p.name}/" for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_the_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    layers = page.split("## Layers", 1)[1]
    assert [p for p in _packages() if f"`{p}`" not in layers] == []


# Folders whose files one line of the page names together.
NAMED_TOGETHER = ("api/routes/", "api/v1/", "api/mlflow/", "api/grpc/protocol/", "cli/")


def test_the_development_page_names_every_module() -> None:
    page = (ROOT / "docs" / "development.md").read_text()
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if path.name in {"__init__.py", "__main__.py"} or relative.startswith(NAMED_TOGETHER):
            continue
        if not re.search(rf"(?<![\w.]){re.escape(path.name)}\b", page):
            missing.append(relative)
    assert missing == []
    assert [p for p in _packages() if p not in page] == []
