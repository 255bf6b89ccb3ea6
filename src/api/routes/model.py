"""The served models: their list and metadata, their rollouts, and the admin reload."""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from src import metrics
from src.api.deps import DataPlaneDep, route, tenant
from src.api.routing import policy
from src.api.schemas import ErrorResponse, ModelSummary
from src.errors import ModelNotFoundError, ModelStoreError
from src.serving.predictor import Predictor
from src.serving.reload_broadcast import ReloadBroadcast
from src.store import rollout as rollouts
from src.store.rollout import Rollout
from src.tenants.access import audit
from src.tenants.keys import Tenant

router = APIRouter(tags=["model"])


def _metadata(predictor: Predictor) -> dict[str, Any]:
    return {**predictor.metadata, "version": predictor.version, "engine": predictor.engine}


@router.post(
    "/model/reload",
    summary="Load the store's CURRENT versions now, in every worker (admin)",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
    openapi_extra=policy(scope="admin"),
)
async def reload_model(request: Request) -> dict[str, Any]:
    """Check the store at once in every worker of the server instead of waiting for the next poll.

    Needs a key with the admin scope (ADMIN_API_KEYS, or API_KEYS_FILE). Finds newly published
    models, loads every changed CURRENT and retries rejected versions. `workers` says, per worker
    process, what each model now serves; `missing` names workers that did not answer in time. The
    top-level fields are the default model's in the worker that answered, and `models` is every
    model's there.
    """
    reloads: ReloadBroadcast = request.app.state.reloads
    result = await reloads.reload_everywhere()
    asker = tenant(request)
    audit("admin", asker.id if asker else "", "/model/reload", None, "done", missing_workers=result.get("missing"))
    workers: dict[str, dict[str, Any]] = result["workers"]
    here = workers.get(str(os.getpid())) or next(iter(workers.values()), {})
    default = here.get(request.app.state.models.default_name, {})
    return {**default, "models": here, **result}


@router.get("/model", summary="Metadata of the default model", openapi_extra=policy(scope="read"))
async def model_metadata(plane: DataPlaneDep, request: Request) -> dict[str, Any]:
    """What the store recorded when the default model was published, plus how it is being scored."""
    return _metadata(plane.resolve(None, None, tenant(request), "/model")[1])


@router.get("/models", summary="The served models", openapi_extra=policy(scope="read"))
async def list_models(plane: DataPlaneDep, request: Request) -> list[ModelSummary]:
    """Every model this server serves that the API key may use, the default one marked; a model not
    ready says why."""
    return [
        ModelSummary(
            name=report.name,
            default=report.default,
            ready=report.ready,
            version=report.version,
            classes=report.classes,
            engine=report.engine,
            reason=report.reason,
        )
        for report in plane.model_reports(tenant(request))
    ]


@router.get(
    "/models/{name}",
    summary="Metadata of a named model",
    responses={404: {"model": ErrorResponse, "description": "No model of that name is served"}},
    openapi_extra=policy(scope="read"),
)
async def named_model_metadata(name: str, plane: DataPlaneDep, request: Request) -> dict[str, Any]:
    """What the store recorded when the model was published, plus how it is being scored."""
    return _metadata(plane.resolve(name, None, tenant(request), "/models/{name}")[1])


def _rollout_figures(name: str, rollout: Rollout) -> dict[str, Any]:
    """The rollout's counts, summed over every worker of this server (Prometheus multiprocess files)."""
    candidate, baseline = rollout.candidate, rollout.baseline
    requests = metrics.totals(metrics.ROLLOUT_REQUESTS, model=name, version=candidate, role="candidate")
    current = metrics.totals(metrics.ROLLOUT_REQUESTS, model=name, version=baseline, role="current")
    seconds = metrics.totals(metrics.ROLLOUT_PAIRED_SECONDS, model=name, version=candidate, role="candidate")
    current_seconds = metrics.totals(metrics.ROLLOUT_PAIRED_SECONDS, model=name, version=baseline, role="current")
    errors = metrics.totals(metrics.ROLLOUT_ERRORS, model=name, version=candidate)
    compared = metrics.totals(metrics.ROLLOUT_COMPARED, model=name, version=candidate)
    agreed = metrics.totals(metrics.ROLLOUT_AGREED, model=name, version=candidate)
    difference = metrics.totals(metrics.ROLLOUT_ABSOLUTE_DIFFERENCE, model=name, version=candidate)
    ratio = seconds / current_seconds if current_seconds else None  # on the same texts
    return {
        "candidate_requests": int(requests),
        "current_requests": int(current),
        "candidate_errors": int(errors),
        "error_rate": errors / (requests + errors) if requests + errors else None,
        "latency_ratio": ratio,
        "compared": int(compared),
        "agreement": agreed / compared if compared else None,
        "mean_absolute_difference": difference / compared if compared else None,
    }


@router.get(
    "/models/{name}/rollout",
    summary="A model's rollout: its candidate, mode, share, state and guard figures",
    responses={404: {"model": ErrorResponse, "description": "No model of that name is served, or no rollout"}},
    openapi_extra=policy(scope="read"),
)
async def model_rollout(name: str, plane: DataPlaneDep, request: Request) -> dict[str, Any]:
    """The rollout as the store holds it (`state`: running, aborted or promoted; `reason` when aborted),
    its counts over every worker of this server since it started here, and the guards' thresholds."""
    state = plane.model(name, tenant(request), route(request))
    try:
        rollout = await asyncio.to_thread(rollouts.read_rollout, state.stores[0])
    except ModelStoreError as error:  # reported, not a 500: the servers answer with CURRENT alone meanwhile
        return {"state": "unreadable", "reason": error.message, "candidate_loaded_here": state.traffic is not None}
    if rollout is None:
        raise ModelNotFoundError(f"model {name} has had no rollout")
    return {
        **rollout.to_dict(),
        **_rollout_figures(name, rollout),
        "candidate_loaded_here": state.traffic is not None and state.traffic.rollout.id == rollout.id,
        "guards": asdict(state.guards),
        "key_header": request.app.state.rollout_key_header,
    }


def _own_view(sent: dict[str, int], asker: Tenant | None) -> dict[str, int]:
    if asker is None:
        return sent
    others = sum(count for key, count in sent.items() if key != asker.id)
    return {asker.id: sent.get(asker.id, 0), **({"others": others} if others else {})}


@router.get(
    "/models/{name}/drift",
    summary="A model's drift: its recent texts against the served version's reference profile",
    openapi_extra=policy(scope="read"),
    responses={404: {"model": ErrorResponse, "description": "No model of that name is served"}},
)
async def model_drift(name: str, plane: DataPlaneDep, request: Request) -> dict[str, Any]:
    """The newest DRIFT_WINDOW texts the server answered with CURRENT (over every worker) against the
    profile measured when the version was trained or imported. `status`: `collecting` until the window
    holds DRIFT_MIN_TEXTS texts, then `ok` or `drifting`; `no_reference` for a version without a profile.
    Each signal gives its test (PSI, or chi-squared for the label), statistic, threshold and verdict;
    `keys`, how many of the window's texts each API key sent (a key sees its own count, the rest as
    `others`)."""
    state, predictor = plane.find(name, None, tenant(request), route(request))
    name, window = state.name, state.drift
    answer: dict[str, Any] = {"model": name, "version": predictor.version}
    if window is None or window.version != predictor.version:
        return {**answer, "status": "no_reference", "drifting": False, "reason": state.no_drift_reason}
    report = await asyncio.to_thread(window.report)
    return {
        **answer,
        "window": {"texts": report.texts, "size": window.size, "min_texts": window.thresholds.min_texts},
        "reference": {"texts": window.profile.texts, "source": window.profile.source},
        "keys": _own_view(await asyncio.to_thread(window.keys, request.app.state.access.ring.ids), tenant(request)),
        **report.to_dict(),
    }
