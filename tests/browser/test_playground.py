"""The playground page in a real browser: Debian's Chromium driven by Playwright, against real uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from src.model.datasets import Dataset
from src.store.store import ModelStore
from tests.conftest import SECOND_MODEL
from tests.e2e.servers import ROOT, free_port, request, running_server, uvicorn_command

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"]
FLAGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make test`, which installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def base_url(model_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        yield server.base_url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    # A 4xx the test provokes on purpose is logged by the browser as a failed load; anything else is a bug.
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" and "status of 422" not in message.text else None
        ),
    )
    yield opened
    context.close()
    assert not errors, f"browser console errors: {errors}"


def test_positive_text_shows_label_bars_and_highlighted_words(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    expect(page).to_have_title("ml-service playground")
    page.get_by_label("Text to analyse").fill("A wonderful, moving film with brilliant acting. I loved it.")
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#label")).to_have_text("positive")
    expect(page.get_by_role("meter", name="positive probability")).to_be_visible()
    expect(page.locator("#highlighted .towards-positive").first).to_be_visible()
    assert "wonderful" in page.locator("#highlighted .towards-positive").all_inner_texts()
    expect(page.locator("#version")).not_to_be_empty()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_one_model_shows_no_picker(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Text to analyse").fill("Fine.")
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#model-name")).to_have_text("sentiment")
    expect(page.get_by_label("Model")).to_be_hidden()


def test_the_user_picks_a_model_when_there_are_several(page: Page, two_models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_DIR": str(two_models_dir), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        page.goto(server.base_url + "/")
        picker = page.get_by_label("Model")
        expect(picker).to_be_visible()
        expect(picker).to_have_value("sentiment")
        page.get_by_label("Text to analyse").fill("omg cant wait for tonight lol!!! @jess")
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator("#label")).to_have_text("positive")
        picker.select_option(SECOND_MODEL)
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator("#label")).to_have_text("tweet")
        expect(page.locator("#model-name")).to_have_text(SECOND_MODEL)
        expect(page.get_by_role("meter", name="review probability")).to_be_visible()
        expect(page.locator("#towards")).to_have_text("tweet")
        expect(page.locator("#highlighted .towards-positive").first).to_be_visible()


def test_empty_text_shows_an_error_in_words(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Text to analyse").fill("   ")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("alert")).to_have_text("Please type some text first.")
    expect(page.locator("#result")).to_be_hidden()


def test_too_long_text_shows_the_servers_reason(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.evaluate("document.getElementById('text').removeAttribute('maxlength')")
    page.get_by_label("Text to analyse").fill("word " * 5000)
    page.get_by_role("button", name="Analyse").click()
    expect(page.get_by_role("alert")).to_contain_text("the limit is 20000")


def test_keyboard_only_use(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "text"
    page.keyboard.type("Dull, boring and far too long.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#label")).to_have_text("negative")


def test_security_headers(base_url: str) -> None:
    for path in ("/", "/static/playground.js", "/static/playground.css"):
        headers = request(base_url + path, headers={"Accept": "text/html"}).headers  # as a browser asks
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    assert request(base_url + "/static/../main.py").status == 404


def test_page_asks_for_a_key_when_the_service_needs_one(browser: Browser, model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0", "API_KEYS": "playground-key"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.base_url + "/")
        expect(page.get_by_label("API key (this service needs one)")).to_be_hidden()
        page.get_by_label("Text to analyse").fill("A wonderful film.")
        page.get_by_role("button", name="Analyse").click()
        expect(page.get_by_role("alert")).to_have_text("This service needs an API key: enter it above.")
        page.get_by_label("API key (this service needs one)").fill("playground-key")
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator("#label")).to_have_text("positive")
        context.close()


def test_api_docs_render_from_the_service_alone(page: Page, base_url: str) -> None:
    """/docs once loaded Swagger UI from a CDN: blank in a cluster without internet."""
    outside: list[str] = []
    page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(base_url) else None)
    page.goto(base_url + "/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/predict/batch", exact=True)).to_be_visible()
    expect(page.get_by_text("/models/{name}/predict", exact=True)).to_be_visible()
    assert outside == []


def test_a_model_without_probabilities_shows_its_signed_score(page: Page, sample: Dataset, tmp_path: Path) -> None:
    svm = Pipeline([("tfidf", TfidfVectorizer()), ("svm", LinearSVC())]).fit(sample.texts, sample.labels)
    ModelStore(tmp_path / "models" / "sentiment").publish(svm, {"classes": ["negative", "positive"]})
    port = free_port()
    env = {"MODEL_DIR": str(tmp_path / "models"), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        page.goto(server.base_url + "/")
        page.get_by_label("Text to analyse").fill("A dull, boring and awful film.")
        page.get_by_role("button", name="Analyse").click()
        expect(page.locator("#label")).to_have_text("negative")
        row = page.locator(".bar", has_text="positive score")
        expect(row).to_be_visible()
        assert row.inner_text().split()[-1].startswith("-")  # below 0: the first class
        expect(page.locator("#towards")).to_have_text("positive")
        expect(page.locator("#highlighted .towards-positive, #highlighted .towards-negative").first).to_be_visible()
