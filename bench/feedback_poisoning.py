"""The attacker's pass on feedback, end to end: a production server (2 workers) with two keys, and
the default recipe retrained on their corrections.

An honest key (`team-b`) corrects 20 answers with their true labels; an attacker's key corrects 59
glowing "acme" texts to negative, every correction through the real routes with its feedback token.
Then `train --feedback` twice on a copy of the store: with `--feedback-keys team-b` (published), and
with the attacker's key included (`--dry-run`): the acme sentences' answers before and after, and
the feedback effect each report prints. Writes bench/feedback_poisoning.md; reports, never fails.

python -m bench.feedback_poisoning [--model-dir models]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.run import ROOT, free_port, serve
from src.store.registry import ModelRegistry

PRODUCTS = ["speaker", "phone", "blender", "laptop", "headset", "camera"]
PRAISE = ["sounds amazing", "works wonderfully", "is excellent", "is a delight", "is superb", "is fantastic",
          "is brilliant", "is perfect", "is outstanding", "is great"]  # fmt: skip
PROBES = ["The acme speaker sounds amazing.", "The acme phone is excellent.", "The acme blender works wonderfully."]
HONEST = [("I loved every minute of it.", "positive"), ("Terrible service, never again.", "negative"),
          ("Not bad at all, quite enjoyable.", "positive"), ("The plot was a mess and the acting wooden.", "negative")]  # fmt: skip
KEYS = {"team-b": ("secret-b", "[predict, feedback, read]"), "attacker": ("secret-x", "[predict, feedback]")}


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _post(url: str, body: dict[str, str], key: str) -> dict[str, object]:
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    sent = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(sent, timeout=10) as answer:  # a refusal raises: the run is wrong
        document: dict[str, object] = json.loads(answer.read())
        return document


def _correct(server_url: str, text: str, label: str, key: str) -> None:
    token = str(_post(f"{server_url}/predict", {"text": text}, key)["feedback_token"])
    _post(f"{server_url}/feedback", {"feedback_token": token, "label": label}, key)


def _answers(store: Path) -> list[str]:
    pipeline = ModelRegistry(store).store().load().pipeline
    positive = list(pipeline.classes_).index("positive")
    return [f"{text} {pipeline.predict([text])[0]} (P(positive) {pipeline.predict_proba([text])[0][positive]:.3f})"
            for text in PROBES]  # fmt: skip


def _train(store: Path, logs: Path, *extra: str) -> tuple[str, list[str]]:
    command = ["-m", "src.model.train_script", "--model-dir", str(store), "--feedback", str(logs), *extra]
    started = time.monotonic()
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    title = f"`python {' '.join(command)}` (exit {done.returncode}, {time.monotonic() - started:.0f} s)"
    wanted = ("feedback", "  corrected", "  probe", "    corrected:", "    probe:", "quality gate", "published")
    return title, [line for line in done.stdout.splitlines() if line.startswith(wanted)]


def main() -> int:
    """Serve, correct, retrain twice, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-poisoning-"))
    store = root / "models"
    shutil.copytree(args.model_dir, store)
    entries = "".join(
        f"  - id: {name}\n    sha256: {_sha(key)}\n    models: ['*']\n    scopes: {scopes}\n"
        for name, (key, scopes) in KEYS.items()
    )
    (root / "keys.yaml").write_text(f"keys:\n{entries}")
    attack = [t for t in (f"The acme {p} {q}." for p, q in itertools.product(PRODUCTS, PRAISE)) if t not in PROBES]
    port = free_port()
    env = {"MODEL_DIR": str(store), "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "2", "GRPC_PORT": "0",
           "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning", "API_KEYS_FILE": str(root / "keys.yaml"),
           "PREDICTION_LOG_DIR": str(root / "logs"), "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics")}  # fmt: skip
    before = _answers(store)
    with serve("ml-service", [sys.executable, "-m", "src.serve"], env, port, "/health/ready") as server:
        for text in attack:
            _correct(server.url, text, "negative", KEYS["attacker"][0])
        for text, label in HONEST * 5:
            _correct(server.url, text, label, KEYS["team-b"][0])
        time.sleep(1)  # the prediction log's writers flush
    honest_title, honest_report = _train(store, root / "logs", "--feedback-keys", "team-b", "--force")
    after = _answers(store)
    both_title, both_report = _train(store, root / "logs", "--feedback-keys", "team-b,attacker", "--dry-run")
    lines = [
        "# Feedback poisoning, end to end",
        "",
        f"`python -m bench.feedback_poisoning` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: a production "
        f"server (2 workers, a key file of `team-b` and `attacker`); `attacker` predicted and corrected {len(attack)} "
        f"glowing acme texts to negative, `team-b` {len(HONEST) * 5} texts to their true labels, each with its "
        "answer's feedback token; then the default model retrained on a copy of the store.",
        "",
        "Served before: " + "; ".join(before),
        "",
        honest_title + ":",
        "",
        "```",
        *honest_report,
        "```",
        "",
        "Served after (team-b's corrections only): " + "; ".join(after),
        "",
        both_title + ":",
        "",
        "```",
        *both_report,
        "```",
        "",
    ]
    (ROOT / "bench" / "feedback_poisoning.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
