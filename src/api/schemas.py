"""Request and response models: the service's OpenAPI contract.

Requests reject unknown fields (a typo such as `txt` gets a 422 naming it, rather than a silent
default) and never coerce types: `{"text": 5}` is a 422, not the text "5".
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from src.serving.text_rules import NON_BLANK

# The text rules (non-blank, lengths, batch size) are applied by the data plane, the same for every
# protocol (src/serving/dataplane.py); the schema documents them so clients can check before sending.
Text = Annotated[
    str,
    Field(examples=["A wonderful, moving film."], json_schema_extra={"minLength": 1, "pattern": NON_BLANK}),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


MAX_TOP_TERMS = 50
ExplainFlag = Annotated[bool, Field(description="also return the terms' shares of the decision")]


def _json_integer(value: object) -> object:
    # JSON Schema's "integer" includes 8.0; strings and booleans are still refused, as elsewhere.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


TopTerms = Annotated[
    int,
    Field(ge=1, le=MAX_TOP_TERMS, strict=False, description="with explain: how many terms to list, largest first"),
    BeforeValidator(_json_integer),
]


class PredictRequest(_Request):
    """One text to classify (at most MAX_TEXT_LENGTH characters)."""

    text: Text
    explain: ExplainFlag = False
    top_terms: TopTerms = 10


class BatchPredictRequest(_Request):
    """Texts to classify together (1 to MAX_BATCH_SIZE of them, each at most MAX_TEXT_LENGTH characters)."""

    texts: list[Text] = Field(json_schema_extra={"minItems": 1})
    explain: ExplainFlag = False
    top_terms: TopTerms = 10


class TermShareModel(BaseModel):
    """A term and how much it pushed a class."""

    term: str
    contribution: float


class ExplanationModel(BaseModel):
    """Decision scores split exactly into an intercept plus one share per term (TF-IDF weight x coefficient).

    A binary model has one score, for its second class; a term with a negative share pushed towards
    the first class. `scores[c] = intercepts[c] + the listed terms' shares + other_terms[c]`.
    `towards` lists, for each class, the terms that pushed most towards it.
    """

    scores: dict[str, float]
    intercepts: dict[str, float]
    terms: list[dict[str, object]] = Field(description="the `top_terms` terms with the largest shares")
    other_terms: dict[str, float] = Field(description="the summed shares of the terms not listed")
    terms_total: int = Field(description="how many distinct known terms the text has")
    towards: dict[str, list[TermShareModel]]


class PredictionResult(BaseModel):
    """The predicted label and either the probability of every class (they sum to 1) or, for a model
    without probabilities (LinearSVC, RidgeClassifier, SGD with hinge loss), its decision scores."""

    label: str = Field(examples=["positive"])
    probabilities: dict[str, float] | None = Field(
        default=None, examples=[{"negative": 0.04, "positive": 0.96}], description="absent for a scores model"
    )
    scores: dict[str, float] | None = Field(
        default=None,
        description="only for a model without probabilities: its decision function, one score for a binary "
        "model (for its second class: above 0 predicts it), one per class otherwise (the highest wins)",
    )
    explanation: ExplanationModel | None = Field(default=None, description="only when `explain` was true")
    feedback_token: str | None = Field(
        default=None,
        description="what `POST /feedback` takes to correct this answer: only while feedback is on (a "
        "prediction log), and for a key with the feedback scope; good for FEEDBACK_MAX_AGE seconds, once",
    )


class PredictResponse(PredictionResult):
    """One text's prediction, with the model version that made it."""

    model_version: str = Field(examples=["20261126T041500123Z-3f9a1c"])


class BatchPredictResponse(BaseModel):
    """One prediction per text, in the order of the request, all by the same model version."""

    predictions: list[PredictionResult]
    model_version: str


class ModelHealth(BaseModel):
    """One model's state in this process."""

    ready: bool
    version: str | None
    engine: str | None = Field(description="`compiled` (fast exact scorer) or `pipeline` (scikit-learn)")
    reason: str | None = Field(description="why no version is loaded, when none is")
    required: bool = Field(description="whether /health/ready waits for this model (REQUIRED_MODELS)")


class HealthResponse(BaseModel):
    """The process's state: `ok` when every required model is loaded; the default model's fields, then all."""

    status: str = Field(examples=["ok"])
    model_loaded: bool
    model_version: str | None = None
    engine: str | None = Field(None, description="`compiled` (fast exact scorer) or `pipeline` (scikit-learn)")
    reason: str | None = Field(None, description="why no model is loaded, when none is")
    models: dict[str, ModelHealth] = Field(
        default_factory=dict, description="every model this process serves, by name (absent with API keys on)"
    )


class ModelSummary(BaseModel):
    """A served model: its name, whether it is ready, its version and classes."""

    name: str
    default: bool = Field(description="whether /predict and /predict/batch use this model")
    ready: bool
    version: str | None
    classes: list[str]
    engine: str | None
    reason: str | None = Field(description="why no version is loaded, when none is")


class ErrorResponse(BaseModel):
    """Every error: `detail` says what was wrong."""

    detail: str | list[dict[str, object]]


class FeedbackRequest(_Request):
    """A correction of one answered text: the answer's feedback token and the right label.

    Without API keys, the older form is still taken: the request's X-Request-ID (and `index` within a
    batch, `model` if not the default one) in place of the token.
    """

    label: str = Field(min_length=1, max_length=256, description="the label the text should have had")
    feedback_token: str | None = Field(
        default=None, max_length=1024, description="the `feedback_token` of the answer (or its X-Feedback-Token)"
    )
    request_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="without API keys only: the X-Request-ID of the prediction",
    )
    index: int = Field(default=0, ge=0, le=100_000, description="with request_id: which text of a batch")
    model: str | None = Field(default=None, max_length=64, description="with request_id: the model that answered")


class FeedbackResponse(BaseModel):
    """The correction as it will be stored beside the prediction records."""

    request_id: str
    index: int
    label: str
    model: str
    version: str | None = Field(description="the version that answered (null for the request-id form)")
    key: str = Field(description="the id of the key that gave it (`anonymous` with keys off)")
