from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from src.config import EmptyKeyFileError, Settings, load_settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.model_dir == Path("models")
    assert settings.port == 8000
    assert settings.max_batch_size == 256


def test_every_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/models")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("MAX_TEXT_LENGTH", "50")
    settings = Settings()
    assert (settings.model_dir, settings.port, settings.log_level, settings.max_text_length) == (
        Path("/models"),
        9000,
        "debug",
        50,
    )


@pytest.mark.parametrize(("name", "value"), [("PORT", "0"), ("LOG_LEVEL", "loud"), ("MAX_BATCH_SIZE", "0")])
def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


def test_api_keys_can_come_from_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "API_KEYS").write_text("from-a-file")
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.api_keys is not None
    assert settings.api_keys.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)
    monkeypatch.setenv("API_KEYS", "from-the-environment")
    from_env = Settings(_secrets_dir=tmp_path).api_keys
    assert from_env is not None
    assert from_env.get_secret_value() == "from-the-environment"


@pytest.mark.parametrize("content", ["", "\n", " , ,\n"])
def test_an_empty_key_file_refuses_to_start(tmp_path: Path, content: str) -> None:
    """The reproduction: a re-applied Secret with API_KEYS "" made every restarted pod serve without keys."""
    (tmp_path / "API_KEYS").write_text(content)
    with pytest.raises(EmptyKeyFileError, match="holds no key; refusing to start with API keys switched off"):
        load_settings(tmp_path)


def test_key_files_with_keys_and_no_folder_load(tmp_path: Path) -> None:
    (tmp_path / "API_KEYS").write_text("k1,k2")
    (tmp_path / "ADMIN_API_KEYS").write_text("")  # an empty admin list only disables the admin endpoint
    keys = load_settings(tmp_path).api_keys
    assert keys is not None
    assert keys.get_secret_value() == "k1,k2"
    assert load_settings(tmp_path / "absent").api_keys is None


def test_each_default_is_written_once_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from src.config import default_of
    from src.drift.statistics import DriftThresholds
    from src.serving.drift_window import DriftSettings
    from src.serving.rollout_traffic import Guards

    for name in [n for n in Settings.model_fields if n.startswith(("rollout_max", "rollout_min", "drift_"))]:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings()
    assert Guards() == Guards.from_settings(settings)
    drift = DriftSettings.from_settings(settings)
    assert drift.thresholds == DriftThresholds() == DriftSettings().thresholds
    assert drift.size == DriftSettings().size == default_of("drift_window") == 500
