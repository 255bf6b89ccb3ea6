"""The default model, trained as `make run` trains it: its behaviour-suite pass rates and held-out scores.

Training on all the bundled data takes about 30 s here; leave-one-source-out is skipped (it is six
more trainings; bench/model_quality.py reports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.cli.train import main
from src.store.registry import ModelRegistry
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def default_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("default-model")
    assert main(["--model-dir", str(root), "--no-cross-source"]) == 0
    return root


@pytest.fixture(scope="module")
def metadata(default_store: Path) -> dict[str, Any]:
    return ModelRegistry(default_store).store().load().metadata


def test_behaviour_suite_pass_rates(metadata: dict[str, Any]) -> None:
    behaviour = metadata["behaviour"]
    assert behaviour["cases"] >= 200
    by_capability = behaviour["by_capability"]
    # Floors just under what the default model measured (docs/training.md model card: .961, .775,
    # .895, .917, .918); the model-quality issue's targets are .96 vocabulary, .89 contrast, .91 overall.
    assert by_capability["vocabulary"] >= 0.95
    assert by_capability["negation"] >= 0.75
    assert by_capability["contrast"] >= 0.84
    assert by_capability["names"] >= 0.87
    assert by_capability["appended negative clause"] >= 0.9
    assert behaviour["pass_rate"] >= 0.90


def test_held_out_scores_per_source(metadata: dict[str, Any]) -> None:
    per_source = metadata["evaluation"]["per_source"]
    assert set(per_source) == {"imdb", "rotten_tomatoes", "tweets", "uci_amazon", "uci_imdb", "uci_yelp"}
    assert per_source["imdb"]["accuracy"] >= 0.88
    assert per_source["rotten_tomatoes"]["accuracy"] >= 0.76
    assert per_source["tweets"]["accuracy"] >= 0.85
    for source in ("uci_amazon", "uci_imdb", "uci_yelp"):
        assert per_source[source]["accuracy"] >= 0.83


def test_model_endpoint_shows_the_behaviour_report_and_gate(default_store: Path) -> None:
    with TestClient(create_app(make_settings(default_store))) as client:
        body = client.get("/model").json()
        answer = client.post("/predict", json={"text": "I love this phone, the battery lasts all day!"}).json()
    assert body["behaviour"]["by_type"]["MFT"] >= 0.85
    assert body["quality_gate"]["passed"] is True
    assert body["params"]["negation"] is True
    assert body["params"]["lexicon_tokens"] is True
    assert answer["label"] == "positive"
