"""The gRPC servicer: each call runs in one of the worker's gRPC threads and hands its work to the
worker's event loop, where the data plane runs as for every other protocol.

The same policy as REST: API keys from the `x-api-key` metadata with their scopes, models and
rates (model metadata needs `read`, inference `predict`; health answers need none; a key past its
rate is RESOURCE_EXHAUSTED with `retry-after` in the trailing metadata), the text rules and MAX_BATCH_SIZE of the data
plane, load shedding past MAX_PENDING_REQUESTS calls in a worker (by gRPC itself: see
src/api/grpc/server.py), deadlines honoured (a call whose
deadline passes while it waits is answered DEADLINE_EXCEEDED), the request id from `x-request-id`
(else a new one, sent back in the initial metadata). Errors are the protocol's status codes with
the message REST would give.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeAlias, TypeVar

import grpc

from src import metrics, tracing
from src.api.grpc.codec import encode_infer_response, encode_model_metadata, parse_infer_request
from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.open_inference import SHAPE_LOCATION
from src.errors import InvalidInputError, ServiceError
from src.serving.dataplane import DataPlane
from src.serving.inference import InferenceRequest
from src.serving.request_identity import client_key_from, request_id_from
from src.tenants.access import Access
from src.tenants.keys import Tenant

logger = logging.getLogger(__name__)

# The protocol's service name: the path of every call is /inference.GRPCInferenceService/<method>.
SERVICE_NAME = "inference.GRPCInferenceService"
Reply = TypeVar("Reply")
Context: TypeAlias = grpc.ServicerContext

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


Work: TypeAlias = Callable[[Tenant | None], Awaitable[Reply]]


Grant: TypeAlias = Callable[[], Awaitable[Tenant | None]]


async def _coroutine(work: Work[Reply], grant: Grant | None, span: Any = None) -> Reply:
    if span is None:
        return await work(None if grant is None else await grant())
    token = tracing.attach(span)  # the call's server span, current for the data plane on the event loop
    try:
        return await work(None if grant is None else await grant())
    finally:
        tracing.detach(token)


# What gRPC reports as the time left of a call without a deadline (about 2**63 ns) is no timeout.
_NO_DEADLINE = 1e9


def _seconds_left(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > _NO_DEADLINE else max(remaining, 0.0)


def status_of(error: ServiceError) -> tuple[grpc.StatusCode, str]:
    """The protocol's status for a service error, and its message (with where, for a broken text rule)."""
    code = _CODES.get(error.status_code, grpc.StatusCode.INTERNAL)
    return code, error.located if isinstance(error, InvalidInputError) else error.message


class InferenceService:
    """ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer; gRPC answers
    UNIMPLEMENTED for the methods only Triton has (streaming, repository, shared memory)."""

    def __init__(
        self,
        plane: DataPlane,
        access: Access,
        loop: asyncio.AbstractEventLoop,
        *,
        rollout_key_header: str,
    ) -> None:
        self.plane = plane
        self.rollout_key_header = rollout_key_header
        self.access = access
        self.loop = loop

    def _call(
        self,
        method: str,
        context: grpc.ServicerContext,
        work: Work[Reply],
        *,
        scope: str | None = None,
        initial: tuple[tuple[str, str], ...] = (),
    ) -> Reply:
        """Run `work` on the event loop under the call's policy; `initial` is the call's initial metadata."""
        in_flight = metrics.labelled(metrics.REQUESTS_IN_FLIGHT, "grpc")
        in_flight.inc()
        try:
            if tracing.TRACER is None:
                if initial:
                    context.send_initial_metadata(initial)
                return self._run(method, context, work, scope, None)
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            attributes = {"rpc.system": "grpc", "rpc.service": SERVICE_NAME, "rpc.method": method}
            with tracing.server_span(f"{SERVICE_NAME}/{method}", tracing.extract(metadata), attributes) as span:
                context.send_initial_metadata((*initial, *tracing.inject(span).items()))
                return self._run(method, context, work, scope, span)
        finally:
            in_flight.dec()

    def _run(self, method: str, context: Context, work: Work[Reply], scope: str | None, span: Any) -> Reply:
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        try:
            grant = None
            if scope is not None:
                given = dict(context.invocation_metadata()).get("x-api-key")
                key = given if isinstance(given, str) else None
                # on the event loop, where a shared rate check is sent
                grant = partial(self.access.authorize, key, "the x-api-key metadata", scope, f"{SERVICE_NAME}/{method}")
            future = asyncio.run_coroutine_threadsafe(_coroutine(work, grant, span), self.loop)
            try:
                return future.result(timeout=_seconds_left(context))
            except concurrent.futures.TimeoutError:
                future.cancel()
                code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before its answer"
        except ServiceError as error:
            code, message = status_of(error)
            if error.retry_after is not None:
                context.set_trailing_metadata((("retry-after", str(error.retry_after)),))
        except Exception:
            logger.exception("gRPC %s failed", method)
            code, message = grpc.StatusCode.INTERNAL, "internal error"
        finally:
            metrics.labelled(metrics.GRPC_REQUESTS, method, code.name).inc()
            metrics.labelled(metrics.GRPC_LATENCY, method).observe(time.perf_counter() - started)
            if span is not None:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    tracing.failed(span)
        context.abort(code, message)  # raises: gRPC answers the call with this status
        raise AssertionError("unreachable")

    def ServerLive(self, request: oip.ServerLiveRequest, context: Context) -> oip.ServerLiveResponse:  # noqa: N802
        """True while the worker answers."""

        async def live(tenant: Tenant | None) -> oip.ServerLiveResponse:
            return oip.ServerLiveResponse(live=self.plane.live())

        return self._call("ServerLive", context, live)

    def ServerReady(self, request: oip.ServerReadyRequest, context: Context) -> oip.ServerReadyResponse:  # noqa: N802
        """True when every required model serves a verified version (the rule of /health/ready)."""

        async def ready(tenant: Tenant | None) -> oip.ServerReadyResponse:
            return oip.ServerReadyResponse(ready=self.plane.ready())

        return self._call("ServerReady", context, ready)

    def ModelReady(self, request: oip.ModelReadyRequest, context: Context) -> oip.ModelReadyResponse:  # noqa: N802
        """True when the model (that version, if named) is loaded and verified; NOT_FOUND if not served."""

        async def ready(tenant: Tenant | None) -> oip.ModelReadyResponse:
            ready = self.plane.model_ready(request.name, request.version or None, tenant, "ModelReady")
            return oip.ModelReadyResponse(ready=ready)

        return self._call("ModelReady", context, ready, scope="read")

    def ServerMetadata(self, request: oip.ServerMetadataRequest, context: Context) -> oip.ServerMetadataResponse:  # noqa: N802
        """The server's name, version and protocol extensions, as over REST."""

        async def metadata(tenant: Tenant | None) -> oip.ServerMetadataResponse:
            server = self.plane.server_metadata()
            return oip.ServerMetadataResponse(name=server.name, version=server.version, extensions=server.extensions)

        return self._call("ServerMetadata", context, metadata)

    def ModelMetadata(self, request: oip.ModelMetadataRequest, context: Context) -> oip.ModelMetadataResponse:  # noqa: N802
        """The model's loaded versions, platform, input and outputs, as over REST."""

        async def metadata(tenant: Tenant | None) -> oip.ModelMetadataResponse:
            model = self.plane.model_metadata(request.name, request.version or None, tenant, "ModelMetadata")
            return encode_model_metadata(model)

        return self._call("ModelMetadata", context, metadata, scope="read")

    def ModelInfer(self, request: oip.ModelInferRequest, context: Context) -> oip.ModelInferResponse:  # noqa: N802
        """Classify the BYTES tensor `text` through the data plane."""
        metadata = dict(context.invocation_metadata())
        request_id = request_id_from(_text(metadata.get("x-request-id")))

        async def infer(tenant: Tenant | None) -> oip.ModelInferResponse:
            with tracing.child("parse"):
                parsed = parse_infer_request(request, self.plane.limits)
            asked = InferenceRequest(
                parsed.texts,
                model=parsed.model,
                version=parsed.version,
                client_key=client_key_from(_text(metadata.get(self.rollout_key_header))),
                request_id=request_id,
                protocol="grpc",
                tenant=tenant,
                route=f"{SERVICE_NAME}/ModelInfer",
            )
            try:
                inference = await self.plane.infer(asked)
            except InvalidInputError as error:
                error.at(parsed.text_location, SHAPE_LOCATION)
                raise
            return encode_infer_response(parsed, inference)

        return self._call("ModelInfer", context, infer, scope="predict", initial=(("x-request-id", request_id),))

    def handler(self) -> grpc.GenericRpcHandler:
        """The protocol's service, inference.GRPCInferenceService, with these methods, for grpc.Server."""
        methods: dict[str, tuple[Callable[..., Any], type[Any]]] = {
            "ServerLive": (self.ServerLive, oip.ServerLiveRequest),
            "ServerReady": (self.ServerReady, oip.ServerReadyRequest),
            "ModelReady": (self.ModelReady, oip.ModelReadyRequest),
            "ServerMetadata": (self.ServerMetadata, oip.ServerMetadataRequest),
            "ModelMetadata": (self.ModelMetadata, oip.ModelMetadataRequest),
            "ModelInfer": (self.ModelInfer, oip.ModelInferRequest),
        }
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    method, request_deserializer=message.FromString, response_serializer=_serialized
                )
                for name, (method, message) in methods.items()
            },
        )


def _text(value: str | bytes | None) -> str | None:
    """A metadata value as text (a `-bin` key's bytes are not)."""
    return value if isinstance(value, str) else None


def _serialized(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
