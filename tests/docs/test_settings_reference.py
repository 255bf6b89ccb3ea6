"""docs/settings.md's table is the one the Settings class gives: it cannot disagree with the code."""

from __future__ import annotations

from scripts.settings_reference import PAGE, render
from src.config import Settings


def test_the_settings_page_is_generated_from_the_settings_class() -> None:
    page = PAGE.read_text()
    assert render(page) == page, "run `make docs` and commit docs/settings.md"
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in page
