"""What else happens when a request is answered: each side effect an observer of the data plane.

`DataPlane.infer` resolves the model, checks the texts and scores them; then every observer is told
of the answer (`answered`) or of the failure (`failed`), in order: the metrics, the trace span's
attributes, the drift window, the prediction log and the feedback tokens. An observer never changes
which answer is given; the feedback tokens only add to it.
"""

from __future__ import annotations

from typing import Protocol

from src import metrics, tracing
from src.errors import ServiceError
from src.serving.inference import Inference, InferenceRequest
from src.serving.model_state import ModelState
from src.serving.prediction_log import PredictionLog
from src.tenants.feedback_tokens import FeedbackTokens
from src.tenants.keys import ANONYMOUS


class InferenceObserver(Protocol):
    """Told of every inference, after its answer is made."""

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        """The request was answered (`seconds` from its arrival at the data plane)."""

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        """The request was refused or failed (`state`: its model, when it was found)."""


class InferenceMetrics:
    """Requests by protocol and outcome; each prediction's label, confidence, words and unknown share."""

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        steps = [metrics.counted(metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "ok"))]
        model = inference.model_name
        confidence = metrics.labelled(metrics.CONFIDENCE, model)
        tokens = metrics.labelled(metrics.INPUT_TOKENS, model)
        oov = metrics.labelled(metrics.INPUT_OOV_RATIO, model)
        for prediction in inference.predictions:
            steps.append(metrics.counted(metrics.labelled(metrics.PREDICTIONS, model, prediction.label)))
            if prediction.confidence is not None:
                steps += metrics.observed(confidence, prediction.confidence)
            steps += metrics.observed(tokens, prediction.tokens)
            steps += metrics.observed(oov, prediction.oov_rate)
        metrics.add(steps)  # every write of the request in one step

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "error").inc()


class TraceAttributes:
    """The request's span says which model and version answered, how many texts, and the rollout's arm."""

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        if not tracing.recording():  # the attributes are built only for a sampled request
            return
        attributes: dict[str, str | int] = {
            tracing.MODEL_NAME: inference.model_name,
            tracing.MODEL_VERSION: inference.model_version,
            tracing.BATCH_SIZE: len(request.texts),
            tracing.PROTOCOL: request.protocol,
            tracing.REQUEST_ID: request.request_id,
        }
        if inference.rollout_arm is not None:
            attributes[tracing.ROLLOUT_ARM] = inference.rollout_arm
        tracing.annotate(attributes)

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        return


class DriftRecorder:
    """The texts CURRENT answered join its drift window (with the key that sent them)."""

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        window = state.drift
        if window is not None and window.version == inference.model_version:
            window.record(inference.predictions, None if request.tenant is None else request.tenant.id)

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        return


class PredictionRecords:
    """Every request leaves a record in the prediction log, answered or refused."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        with tracing.child("prediction_log"):
            self.log.record(
                request.request_id,
                request.protocol,
                request.texts,
                seconds,
                model=inference.model_name,
                version=inference.model_version,
                predictions=inference.predictions,
                key=None if request.tenant is None else request.tenant.id,
            )

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        predictor = state.predictor if state is not None else None
        version = request.version or (predictor.version if predictor is not None else None)
        if isinstance(error, ServiceError):
            status, message = error.status_code, error.message
        else:
            status, message = 500, f"internal error ({type(error).__name__})"
        self.log.record(
            request.request_id,
            request.protocol,
            request.texts,
            seconds,
            model=state.name if state is not None else None,
            version=version,
            status=status,
            error=message,
            key=None if request.tenant is None else request.tenant.id,
        )


class FeedbackTokenIssuer:
    """A feedback token per text, when the protocol can carry it and the key may give feedback: only the
    key that asked can correct the answer, once."""

    def __init__(self, tokens: FeedbackTokens) -> None:
        self.tokens = tokens

    def answered(self, request: InferenceRequest, state: ModelState, inference: Inference, seconds: float) -> None:
        tenant = request.tenant
        if not request.feedback or (tenant is not None and "feedback" not in tenant.scopes):
            return
        key = ANONYMOUS if tenant is None else tenant.id
        inference.feedback_tokens = self.tokens.issue_all(
            request.request_id, inference.model_name, inference.model_version, key, request.texts
        )

    def failed(self, request: InferenceRequest, state: ModelState | None, error: Exception, seconds: float) -> None:
        return


def observers(log: PredictionLog | None, tokens: FeedbackTokens | None) -> list[InferenceObserver]:
    """The observers a server has: metrics, traces and drift always; the log and tokens when they are on
    (tokens only with a log: a correction is joined to its prediction's record)."""
    chosen: list[InferenceObserver] = [InferenceMetrics(), TraceAttributes(), DriftRecorder()]
    if log is not None:
        chosen.append(PredictionRecords(log))
        if tokens is not None:
            chosen.append(FeedbackTokenIssuer(tokens))
    return chosen
