"""What the data plane is asked and what it answers, for every protocol: plain values, no HTTP.

An adapter (JSON, V2 REST and gRPC, V1, MLflow) parses its request into an InferenceRequest and
renders the Inference, ModelMetadata, ModelReport or ModelIndexEntry it gets back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from src import API_VERSION
from src.serving.explanation import Explanation
from src.serving.predictor import Prediction, Predictor
from src.tenants.keys import Tenant

SERVER_NAME = "ml-service"
EXTENSIONS = ("binary_tensor_data",)  # the Open Inference Protocol's extensions this server speaks
PLATFORM = "scikit-learn"
INPUT_NAME = "text"


@dataclass(slots=True)
class InferenceRequest:
    """What any protocol asks of a model: texts, which model (the default for None) and version, options.

    Read, never changed, once made (not frozen: one is made per request, and a frozen dataclass costs
    five times as much to make).

    A broken rule is raised naming the index of its text (InvalidInputError.text_index); the adapter
    says where its own request holds that text."""

    texts: Sequence[str]
    model: str | None = None
    version: str | None = None
    explain: bool = False
    top_terms: int = 10
    # What keeps a client on one version during a canary (ROLLOUT_KEY_HEADER's value; "" without: split
    # per request).
    client_key: str = ""
    request_id: str = ""  # the request's X-Request-ID: in its prediction record and feedback tokens
    protocol: str = "json"  # the adapter's name (json, v2, grpc, v1, mlflow): in prediction records and metrics
    feedback: bool = True  # the protocol can carry feedback tokens back (V1 and MLflow cannot)
    tenant: Tenant | None = None  # the API key's tenant (None: keys are off); it may use only its models
    route: str = ""  # the route (or gRPC method), for the audit line of a refusal


@dataclass
class Inference:
    """The answer for a request's texts, in order: one Prediction each (probabilities in class order).

    Made by one request and read by its adapter; an observer may add to it (the feedback tokens)."""

    model_name: str
    model_version: str
    classes: list[str]
    predictions: list[Prediction]
    explanations: list[Explanation] | None = None
    output: str = "probabilities"  # or "scores", for a model without probabilities
    output_labels: list[str] = field(default_factory=list)  # the class of each probability or score
    scoring_seconds: float = 0.0  # the model's own time on the texts (what a rollout's latency guard compares)
    feedback_tokens: list[str] | None = None  # one per text, while feedback is on and the key may give it
    rollout_arm: str | None = None  # during a rollout: which version answered (current or candidate)


@dataclass(frozen=True)
class ServerMetadata:
    """The server's name, version and protocol extensions."""

    name: str = SERVER_NAME
    version: str = API_VERSION
    extensions: tuple[str, ...] = EXTENSIONS


@dataclass(frozen=True)
class ModelIndexEntry:
    """One model in the repository index: READY (loaded and verified), LOADING or UNAVAILABLE (and why)."""

    name: str
    version: str
    state: str
    reason: str


@dataclass(frozen=True)
class ModelReport:
    """One model's state in this worker, as /health and /models show it: its version, or why none serves."""

    name: str
    default: bool
    required: bool
    version: str | None
    classes: list[str]
    engine: str | None
    reason: str | None

    @property
    def ready(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class ModelMetadata:
    """What a model takes and gives, as every protocol describes it.

    One BYTES input `text` of shape [-1]; outputs `label` (BYTES, [-1]) and `output` (FP32, [-1,
    len(output_labels)]): the probability, or the decision score, of each of `output_labels`."""

    name: str
    versions: list[str]  # CURRENT's, then a running rollout's candidate
    classes: list[str]
    engine: str
    output: str  # "probabilities" or "scores"
    output_labels: list[str]
    platform: str = PLATFORM
    input: str = INPUT_NAME


def output_labels(predictor: Predictor) -> list[str]:
    """The class of each column of the model's FP32 output (its metadata, on every protocol)."""
    return predictor.classes if predictor.has_probabilities else predictor.score_labels
