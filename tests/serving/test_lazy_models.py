"""Many models under one memory budget: loaded on first use, once, and the least recently used unloaded."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.errors import ModelNotReadyError
from src.serving.dataplane import DataPlane
from src.serving.inference import InferenceRequest
from src.serving.model_state import ModelState
from src.serving.served_models import ServedModels
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry

COUNT = 12


def _pipeline(index: int) -> Pipeline:
    """A small model of its own: labels `yes-<index>` and `no-<index>`, told apart by two words."""
    texts = ["alpha beta", "beta alpha alpha", "gamma delta", "delta gamma gamma"] * 3
    labels = [f"yes-{index}", f"yes-{index}", f"no-{index}", f"no-{index}"] * 3
    return Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(texts, labels)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    registry = ModelRegistry(root)
    for index in range(COUNT):
        name = "sentiment" if index == 0 else f"m{index:03d}"
        registry.store(name).publish(_pipeline(index), {"classes": [f"no-{index}", f"yes-{index}"]})
    return root


def _loaded(state: ModelState) -> bool:
    return state.predictor is not None


def _plane(store: Path, models_held: float) -> DataPlane:
    probe = ServedModels([ModelRegistry(store)], default_name="sentiment", max_models=100)
    probe.load_all()
    one_model = probe.models["sentiment"].memory_bytes
    models = ServedModels(
        [ModelRegistry(store)],
        default_name="sentiment",
        max_models=100,
        lazy=True,
        budget=int(one_model * models_held),
        load_wait=10,
    )
    models.load_all()
    return DataPlane(models, TextLimits(max_text_length=100, max_batch_size=8))


def test_only_the_required_model_loads_at_start_and_each_other_on_first_use(store: Path) -> None:
    plane = _plane(store, 4.5)
    loaded = [name for name, state in plane.models.models.items() if state.predictor is not None]
    assert loaded == ["sentiment"]
    assert len(plane.models.models) == COUNT
    assert "loads on its first request" in (plane.models.models["m005"].not_ready_reason or "")
    inference = asyncio.run(plane.infer(InferenceRequest(["alpha beta"], model="m005")))
    assert inference.predictions[0].label == "yes-5"


def test_random_traffic_over_every_model_stays_within_the_budget_with_each_models_own_labels(store: Path) -> None:
    plane = _plane(store, 4.5)  # the required model and three more, with room to spare
    budget = plane.models.budget
    names = sorted(plane.models.models)
    rng = random.Random(7)

    async def traffic() -> None:
        for _ in range(120):
            name = rng.choice(names)
            index = 0 if name == "sentiment" else int(name[1:])
            inference = await plane.infer(InferenceRequest(["gamma delta"], model=name))
            assert inference.predictions[0].label == f"no-{index}"
            assert plane.models.loaded_bytes() <= budget

    asyncio.run(traffic())
    assert plane.models.models["sentiment"].predictor is not None  # required: never unloaded
    assert 2 <= sum(state.predictor is not None for state in plane.models.models.values()) <= 4


def test_the_least_recently_used_goes_first_and_never_one_in_use(store: Path) -> None:
    plane = _plane(store, 2.5)  # the required model and one more

    async def use(name: str) -> None:
        await plane.infer(InferenceRequest(["alpha"], model=name))

    asyncio.run(use("m001"))
    busy = plane.models.models["m001"]
    busy.in_flight = 1  # a request is scoring with it
    asyncio.run(use("m002"))
    assert _loaded(busy)  # over the budget for a while, rather than fail a request
    busy.in_flight = 0
    asyncio.run(use("m003"))
    assert not _loaded(busy)  # now the least recently used goes
    assert "least recently used" in (busy.not_ready_reason or "")


def test_concurrent_first_requests_load_a_model_once(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plane = _plane(store, 4.5)
    state = plane.models.models["m007"]
    loads = []
    load = state.load

    def counted(**kwargs: object) -> bool:
        loads.append(kwargs)
        return load(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "load", counted)

    async def many() -> list[str]:
        answers = await asyncio.gather(
            *(plane.infer(InferenceRequest(["alpha beta"], model="m007")) for _ in range(10))
        )
        return [answer.predictions[0].label for answer in answers]

    assert asyncio.run(many()) == ["yes-7"] * 10
    assert loads == [{"kind": "first_request"}]


def test_a_load_slower_than_the_wait_is_a_503(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plane = _plane(store, 4.5)
    plane.models.load_wait = 0.05
    state = plane.models.models["m009"]
    load = state.load

    def slow(**kwargs: object) -> bool:
        import time

        time.sleep(0.5)
        return load(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "load", slow)

    async def first() -> None:
        with pytest.raises(ModelNotReadyError, match="still loading"):
            await plane.infer(InferenceRequest(["alpha"], model="m009"))
        await asyncio.sleep(0.8)  # the load goes on, and the next request finds the model
        inference = await plane.infer(InferenceRequest(["alpha"], model="m009"))
        assert inference.predictions[0].label == "yes-9"

    asyncio.run(first())


def test_the_repository_index_load_and_unload(store: Path) -> None:
    from fastapi.testclient import TestClient

    from src.api.main import create_app
    from tests.conftest import make_settings

    settings = make_settings(store, model_load="lazy", admin_api_keys="admin-key", max_models=100)
    with TestClient(create_app(settings)) as client:
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        assert len(index) == COUNT
        assert index["sentiment"]["state"] == "READY"
        assert index["m004"]["state"] == "UNAVAILABLE"
        assert "first request" in index["m004"]["reason"]
        admin = {"X-API-Key": "admin-key"}
        assert client.post("/v2/repository/models/m004/load").status_code == 401
        assert client.post("/v2/repository/models/m004/load", headers=admin).status_code == 200
        ready = client.post("/v2/repository/index", json={"ready": True}).json()
        assert {entry["name"] for entry in ready} == {"sentiment", "m004"}
        assert client.post("/v2/repository/models/m004/unload", headers=admin).status_code == 200
        refused = client.post("/v2/repository/models/sentiment/unload", headers=admin)
        assert refused.status_code == 409
        assert "required" in refused.json()["error"]
        assert client.post("/v2/repository/index", json={"ready": "yes"}).status_code == 400
        assert client.post("/v2/repository/models/nope/load", headers=admin).status_code == 404
        answer = client.post("/models/m004/predict", json={"text": "gamma delta"})  # loads again on use
        assert answer.json()["label"] == "no-4"
