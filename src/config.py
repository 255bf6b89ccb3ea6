"""Service settings: every knob is an environment variable, validated at start-up."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from src.tenants.shared_state_url import check_url

# Model names become folder names and URL path segments: no separators, no leading dot.
MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
DEFAULT_MODEL_NAME = "sentiment"
# The defaults that code outside Settings also needs (a store opened by a test or a script).
DEFAULT_MAX_MODEL_BYTES = 50_000_000
DEFAULT_MAX_CLASSES = 255
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BATCH_SIZE = 256

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def parse_bytes(value: str) -> int:
    """A size in bytes from `1073741824`, `512MiB`, `2GiB` or `1GB`; ValueError naming the units otherwise."""
    matched = _BYTES.fullmatch(value)
    unit = matched.group(2).upper() if matched else None
    if matched is None or unit not in _UNITS:
        raise ValueError(
            f"{value!r} is not a size: a number of bytes, or with a unit ({', '.join(sorted(_UNITS)[1:])})"
        )
    return int(float(matched.group(1)) * _UNITS[unit])


class Settings(BaseSettings):
    """Runtime configuration of ml-service, read from the environment (names are upper-case)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True, use_attribute_docstrings=True)

    default_model_name: str = Field(default=DEFAULT_MODEL_NAME, pattern=f"^{MODEL_NAME_PATTERN}$")
    """The model that /predict, /predict/batch and /model serve, and that training publishes by default."""

    model_dir: Path = Path("models")
    """Root of the model store: MODEL_DIR/<name>/<version>/ per model and MODEL_DIR/<name>/CURRENT."""

    max_models: int = Field(default=8, ge=1, le=100_000)
    """Most models one server serves (in name order, the default and required ones first); past it, more are
    logged. With MODEL_LOAD=eager each costs its size in memory in every worker; with lazy, MODEL_MEMORY_BUDGET
    bounds what is loaded at once."""

    model_load: Literal["eager", "lazy"] = "eager"
    """eager: every served model is loaded at start; lazy: only the default and REQUIRED_MODELS are, the others on
    their first request, and the least recently used are unloaded to stay within MODEL_MEMORY_BUDGET."""

    model_memory_budget: int = Field(default=1 << 30, ge=1 << 20)
    """With MODEL_LOAD=lazy, the memory each worker's loaded models may hold (bytes, or with a unit: 512MiB, 2GiB,
    1GB), as measured at load; past it the least recently used model no request is using is unloaded (never a
    required model or a running rollout's)."""

    model_load_wait_seconds: float = Field(default=10.0, gt=0)
    """With MODEL_LOAD=lazy, how long a request waits for its model's first load before a 503 with Retry-After."""

    required_models: str = ""
    """Comma-separated models /health/ready waits for; empty: the default model; `*`: every model in the store."""

    bundled_model_dir: Path | None = None
    """A store served while MODEL_DIR has no published model (the image's built-in default model)."""

    host: str = "0.0.0.0"
    """Interface the production server binds to."""

    port: int = Field(default=8000, ge=1, le=65535)
    """TCP port the server listens on."""

    workers: int = Field(default=0, ge=0, le=64)
    """Worker processes of the production server; 0 means one per available CPU (cgroup-aware)."""

    graceful_timeout_seconds: float = Field(default=20.0, ge=0)
    """On SIGTERM, how long in-flight requests may take to finish before workers are stopped."""

    keep_alive_seconds: int = Field(default=5, ge=1)
    """How long an idle keep-alive connection stays open."""

    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a client may take to send a request's headers (from connecting, or from the previous
    response); past it, 408 and the connection is closed."""

    body_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a client may take to send a request's whole body once its headers are in; past it, 408."""

    write_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a client may leave an answer unread (its receive window full) before it is disconnected."""

    max_pipelined_requests: int = Field(default=16, ge=1)
    """Requests one connection may pipeline behind the one being answered; past it, it is disconnected."""

    max_header_bytes: int = Field(default=16_384, ge=1024)
    """Largest request line plus headers, in bytes; a larger request gets 431 and the connection is closed."""

    max_header_count: int = Field(default=100, ge=8)
    """Most header fields in one request; more get 431."""

    max_connections_per_worker: int = Field(default=1000, ge=16)
    """Open connections one worker holds; past it, new connections are closed at once."""

    worker_timeout_seconds: float = Field(default=30.0, gt=0)
    """A worker whose event loop has not reported for this long (hung, or stopped) is killed and replaced."""

    log_level: LogLevel = "info"
    """Level of the service's logs."""

    max_text_length: int = Field(default=20_000, ge=1)
    """Longest text accepted, in characters; a longer one gets 422."""

    max_batch_size: int = Field(default=DEFAULT_MAX_BATCH_SIZE, ge=1)
    """Most texts accepted by one /predict/batch request; more get 422."""

    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    """Largest request body accepted, in bytes; a larger one gets 413 before it is parsed."""

    max_pending_requests: int = Field(default=128, ge=1)
    """Requests a worker may have queued; past it, predictions get 503 with Retry-After at once."""

    access_log: bool = False
    """Log one JSON line per request (id, method, path, status, duration); never bodies or keys."""

    api_keys: SecretStr | None = None
    """Comma-separated keys; when set, /predict and /predict/batch need one in the X-API-Key header."""

    admin_api_keys: SecretStr | None = None
    """Comma-separated keys for the admin endpoints (POST /model/reload); without any, they refuse all."""

    api_keys_file: Path | None = None
    """A YAML file of keys (by SHA-256) with scopes, models and rates (docs/tenants.md); re-read when it changes."""

    metrics_token: SecretStr | None = None
    """The bearer token /metrics needs (Prometheus sends it: `authorization.credentials_file`); unset, /metrics is
    open while API keys are off and refused while they are on, since it names every model and version."""

    shared_state_url: str | None = None
    """A Redis or Valkey (`redis://host:6379/0`, `rediss://` for TLS) that every pod shares: per-key rates and the
    one correction per text then hold across pods. Unset: each holds per pod (docs/tenants.md)."""

    shared_state_password_file: Path | None = None
    """A file holding the shared state's password (a Secret's key), used over one in SHARED_STATE_URL."""

    shared_state_timeout_ms: float = Field(default=25.0, ge=1, le=1000)
    """The most a request waits on the shared state; past it, rates hold per pod and a correction gets a 503."""

    shared_state_retry_seconds: float = Field(default=1.0, gt=0, le=60)
    """After a fault of the shared state, how long each worker leaves it alone before trying again."""

    feedback_enabled: bool = True
    """With a prediction log: issue a feedback token with every answer and take POST /feedback. Off: neither."""

    feedback_secret: SecretStr | None = None
    """Signs feedback tokens; give every pod the same one. Unset: one made at start (tokens die with the server)."""

    feedback_max_age: float = Field(default=86_400.0, gt=0)
    """Seconds a feedback token is good for: a correction must come within this time of its prediction."""

    model_poll_seconds: float = Field(default=10.0, ge=0)
    """How often a running server checks the store for a newly published model; 0 turns it off."""

    docs_enabled: bool = True
    """Serve the interactive API documentation at /docs (from the image; the schema is always at /openapi.json)."""

    max_model_bytes: int = Field(default=DEFAULT_MAX_MODEL_BYTES, ge=1_000_000)
    """Largest model file loaded; its zip members may declare at most 4x this. Checked before reading."""

    max_classes: int = Field(default=DEFAULT_MAX_CLASSES, ge=2, le=65_535)
    """Most classes a model may have; a model with more is refused at import and at load."""

    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=65_536)
    """Largest answer a model may give to one full batch (MAX_BATCH_SIZE texts); a model whose classes
    would make it larger is refused at import and at load."""

    import_memory_bytes: int = Field(default=4 << 30, ge=512 << 20)
    """Address space the import of a user's model may use (its own process); past it, refused with one line."""

    import_seconds: int = Field(default=600, ge=10)
    """CPU seconds the import of a user's model may use (its own process); past it, refused with one line."""

    model_keep_versions: int = Field(default=5, ge=1)
    """Versions a training run keeps in the store (the newest, and always CURRENT); older ones are pruned."""

    rollout_min_requests: int = Field(default=100, ge=1)
    """Texts a rollout's candidate must score in a worker before its guards judge it."""

    rollout_max_error_rate: float = Field(default=0.01, ge=0, le=1)
    """A rollout is aborted when its candidate fails to score more than this share of texts."""

    rollout_max_latency_ratio: float = Field(default=3.0, gt=1)
    """A rollout is aborted when its candidate's scoring time exceeds CURRENT's by this factor, on the same texts."""

    rollout_max_disagreement: float = Field(default=0.2, ge=0, le=1)
    """A rollout is aborted when its candidate's label differs from CURRENT's on more than this share of texts."""

    rollout_max_seconds_per_text: float = Field(default=0.5, gt=0)
    """A rollout is aborted at once when its candidate takes longer than this per text on one request."""

    rollout_key_header: str = Field(default="x-rollout-key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    """The request header whose value keeps a client on one version during a canary (without it: split per request)."""

    drift_window: int = Field(default=500, ge=10, le=100_000)
    """Texts in the window compared with the served version's reference profile (the newest, over all workers)."""

    drift_min_texts: int = Field(default=200, ge=1)
    """Texts the window needs before drift is judged; until then GET /models/{name}/drift says `collecting`."""

    drift_psi_threshold: float = Field(default=0.25, gt=0)
    """Population stability index over which the length, out-of-vocabulary or score signal is drifting."""

    drift_p_value: float = Field(default=0.001, gt=0, lt=1)
    """Chi-squared p-value under which the predicted label shares are drifting."""

    grpc_port: int = Field(default=8081, ge=0, le=65535)
    """Port of the Open Inference Protocol's gRPC service in every worker of the production server; 0 turns it off."""

    grpc_max_message_bytes: int = Field(default=4_194_304, ge=1024)
    """Largest gRPC request message accepted, in bytes; a larger one gets RESOURCE_EXHAUSTED."""

    grpc_threads: int = Field(default=8, ge=1, le=256)
    """Threads per worker that handle gRPC calls (each waits while the worker's event loop scores)."""

    grpc_idle_timeout_seconds: float = Field(default=120.0, gt=0)
    """A gRPC connection without a call for this long is closed (GOAWAY: a client reconnects when it needs to)."""

    prediction_log_dir: Path | None = None
    """Write prediction records (JSON Lines, one file per worker, rotated by size) and feedback here; unset: off."""

    prediction_log_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    """Send prediction records and feedback to this HTTP endpoint as CloudEvents (batched JSON); unset: off."""

    prediction_log_sample: float = Field(default=1.0, ge=0, le=1)
    """Share of requests whose record is logged (errors included), chosen at random."""

    prediction_log_redact: str = Field(default="", pattern=r"^(|hash|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
    """Empty: log texts as sent; `hash`: their sha256 instead; `module:function`: log what it returns for each text."""

    prediction_log_max_bytes: int = Field(default=100_000_000, ge=10_000)
    """Size at which a worker's prediction log file is rotated (to .1, .2, ...)."""

    prediction_log_backups: int = Field(default=5, ge=0, le=100)
    """Rotated prediction log files a worker keeps."""

    prediction_log_queue: int = Field(default=10_000, ge=10)
    """Records waiting to be written, per worker; when it is full new records are dropped (and counted)."""

    prediction_log_queue_bytes: int = Field(default=64 * 1024 * 1024, ge=1_000_000)
    """Bytes of records waiting to be written, per worker (a record holds its request's texts); past it new
    records are dropped (and counted), so a stalled sink holds at most this and one batch of 4 MB."""

    prediction_log_timeout_seconds: float = Field(default=2.0, gt=0)
    """How long one send to PREDICTION_LOG_URL may take."""

    @field_validator(
        "prediction_log_dir",
        "prediction_log_url",
        "api_keys_file",
        "shared_state_url",
        "shared_state_password_file",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # A ConfigMap holds every setting; an empty one means off (not the current folder).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shared_state_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("shared_state_password_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("model_memory_budget", mode="before")
    @classmethod
    def _bytes_with_unit(cls, value: object) -> object:
        return parse_bytes(value) if isinstance(value, str) else value

    @field_validator("feedback_secret", "metrics_token")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            name = str(info.field_name).upper()
            raise ValueError(f"{name} must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _one_prediction_sink(self) -> Settings:
        if self.prediction_log_dir is not None and self.prediction_log_url is not None:
            raise ValueError("set PREDICTION_LOG_DIR or PREDICTION_LOG_URL, not both")
        return self


def default_of(setting: str) -> Any:
    """A setting's default, for the code that needs it without the environment (each is written once, above)."""
    return Settings.model_fields[setting].default


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def settings_reference() -> str:
    """Every setting as a Markdown table row: variable, default, meaning (docs/settings.md holds it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = " ".join((field.description or "").split()).replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{name.upper()}` | {_shown(field.default)} | {meaning} |")
    return "\n".join(rows) + "\n"


# Secrets (the API keys) may also come as files named after the setting, e.g. a Kubernetes Secret
# mounted here; the environment wins over a file.
SECRETS_DIR = Path("/run/secrets/ml-service")


class EmptyKeyFileError(ValueError):
    """An API key file that exists but holds no key: a deploy slip that would switch auth off."""


def check_key_files(secrets_dir: Path) -> None:
    """Refuse an API_KEYS file that exists but is blank.

    A Secret re-applied with an empty value (as an old `kubectl apply -f k8s/` did) would otherwise
    serve every prediction without a key. To run without keys, leave the key out of the Secret.
    """
    for path in secrets_dir.iterdir():
        if path.name.lower() == "api_keys" and path.is_file() and not path.read_text().replace(",", "").strip():
            raise EmptyKeyFileError(
                f"{path} exists but holds no key; refusing to start with API keys switched off. "
                "Put keys in it, or remove API_KEYS from the Secret to run without keys."
            )


def settings_problem(error: ValidationError | ValueError) -> str:
    """One line naming each setting that is wrong and why (pydantic's own message is many lines)."""
    if not isinstance(error, ValidationError):
        return str(error)
    problems = []
    for each in error.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in each["loc"]).upper() or "settings"
        problems.append(f"{name}: {each['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def load_settings(secrets_dir: Path | None = SECRETS_DIR) -> Settings:
    """Settings from the environment and, if the folder exists, secret files (the environment wins)."""
    if secrets_dir is None or not secrets_dir.is_dir():
        return Settings()
    check_key_files(secrets_dir)
    return Settings(_secrets_dir=secrets_dir)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment (and SECRETS_DIR, if present) once."""
    return load_settings(SECRETS_DIR)
