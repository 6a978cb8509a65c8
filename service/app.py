"""The FastAPI application: image generation, the model list, health, readiness and metrics.

The endpoints are plain functions, so FastAPI runs them in its thread pool.
onnxruntime's InferenceSession.run is safe to call from several threads.
"""

import base64
import logging
import time
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

from ganforge import __version__
from ganforge.grids import images_to_png
from service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service.metrics import Metrics
from service.http_errors import BodySizeLimit, add_exception_handlers
from service.registry import GeneratorModel, ModelRegistry
from service.schemas import GenerateJsonResponse, GenerateRequest, ModelsResponse, ReloadResponse
from service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()


def create_app(settings: Settings) -> FastAPI:
    """Build the application. The model repository is loaded at server startup, in the lifespan."""
    # BodySizeLimit, not FastAPI's max_body_size: FastAPI's limit replaces any response to a large
    # Content-Length with a plain-text 413, and only after the endpoint has run.
    app = FastAPI(title="ganforge", version=__version__, lifespan=_lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()

    add_exception_handlers(app)
    # Middleware added last runs first, so RequestCounter also counts the 413 responses.
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestCounter, metrics=app.state.metrics)
    app.include_router(router)
    _mount_frontend(app, settings.frontend_dir)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    registry = ModelRegistry(settings.models_dir, settings.providers, settings.intra_op_threads)
    app.state.registry = registry
    logger.info(
        "starting ganforge service %s: model repository %s, execution providers %s",
        __version__, registry.models_dir, registry.providers,
    )

    registry.load_all()
    if len(registry):
        logger.info(
            "startup scan: %d model versions loaded, %d folders failed to load", len(registry), len(registry.errors())
        )
    else:
        logger.warning(
            "no model is loaded from %s, so /ready returns 503 until POST /models/reload loads one", registry.models_dir
        )

    yield
    logger.info("stopped ganforge service")


def _mount_frontend(app: FastAPI, frontend_dir) -> None:
    # Mounted after the API routes, so that the routes take precedence over files.
    if frontend_dir.is_dir():
        app.mount("/", StaticFiles(directory=frontend_dir, html=True), name="frontend")
        logger.info("serving the web page from %s", frontend_dir)
    else:
        logger.info("no web page: %s is not a folder", frontend_dir)


# Request counting


def _route_label(scope: dict) -> str:
    # Route templates keep the label set small, and files and unknown paths share the label "other".
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    return "other"


class RequestCounter:
    """ASGI middleware that counts HTTP responses by method, route and status code."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Stays 500 when the application raises before it starts a response.
        status = 500

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.count_request(scope["method"], _route_label(scope), status)


# Endpoints


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def _models_body(registry: ModelRegistry) -> dict:
    models = [_model_entry(model, registry.versions(model.name)) for model in registry.list()]
    errors = [{"path": failure.path, "error": failure.error} for failure in registry.errors()]
    return {"models": models, "errors": errors}


def _model_entry(model: GeneratorModel, versions: list[int]) -> dict:
    metadata = model.metadata
    return {
        "name": model.name,
        "version": model.version,
        "latent_dim": model.latent_dim,
        "image_shape": list(model.image_shape),
        "value_range": list(model.value_range),
        "dataset": metadata.dataset,
        "training_steps": metadata.training_steps,
        "created": metadata.created,
        "providers": model.providers,
        "versions": versions,
    }


# Each GET route also accepts HEAD, for monitors that probe without a body. uvicorn sends no body for HEAD.
@router.get("/health")
@router.head("/health", include_in_schema=False)
def health(request: Request) -> dict:
    """Liveness: 200 whenever the process serves requests."""
    return {"status": "ok", "models": len(_registry(request))}


@router.get("/ready", responses={503: {"description": "no model is loaded"}})
@router.head("/ready", include_in_schema=False)
def ready(request: Request):
    """Readiness: 200 when at least one model is loaded, else 503."""
    registry = _registry(request)
    if len(registry) == 0:
        body = {
            "status": "not ready",
            "detail": f"no model is loaded from {registry.models_dir}: export one there and call POST /models/reload",
            "models_dir": str(registry.models_dir),
            "errors": len(registry.errors()),
        }
        return JSONResponse(status_code=503, content=body)
    return {"status": "ready", "models": len(registry)}


@router.get("/models", response_model=ModelsResponse)
@router.head("/models", include_in_schema=False)
def list_models(request: Request) -> dict:
    """List the loaded model versions and the folders that failed to load."""
    return _models_body(_registry(request))


@router.post("/models/reload", response_model=ReloadResponse)
def reload_models(request: Request) -> dict:
    """Rescan the model repository: load new folders, drop removed ones, reload changed ones."""
    registry = _registry(request)
    changes = registry.refresh()

    body = _models_body(registry)
    body["changes"] = {
        "loaded": changes.loaded,
        "unloaded": changes.unloaded,
        "reloaded": changes.reloaded,
        "failed": changes.failed,
    }
    return body


@router.get("/metrics", response_class=Response)
@router.head("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Request, image and latency counters in the Prometheus text format."""
    text = request.app.state.metrics.render(models_loaded=len(_registry(request)))
    return Response(content=text, media_type=METRICS_CONTENT_TYPE)


@router.post(
    "/generate",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "application/json": {"schema": GenerateJsonResponse.model_json_schema()}},
            "description": "one PNG image, or a grid of them; JSON with base64 PNGs when format=json",
        },
        404: {"description": "unknown model or version"},
        422: {"description": "invalid request"},
    },
)
def generate(
    body: GenerateRequest,
    request: Request,
    output_format: Literal["png", "json"] = Query("png", alias="format", description="png, or json with base64 PNGs"),
) -> Response:
    """Generate images from a seed or from latent vectors z, as a PNG or as JSON."""
    settings: Settings = request.app.state.settings
    model = _registry(request).get(body.model, body.version)
    latents, seed = _resolve_latents(body, model, settings.max_count)

    started = time.perf_counter()
    images = model.generate(latents)
    if output_format == "json":
        response = _json_response(model, seed, latents, images)
    else:
        response = Response(content=images_to_png(images, model.value_range), media_type="image/png")
    elapsed = time.perf_counter() - started

    request.app.state.metrics.observe_generation(model.name, model.version, len(latents), elapsed)
    response.headers["X-Model"] = model.name
    response.headers["X-Model-Version"] = str(model.version)
    if seed is not None:
        response.headers["X-Seed"] = str(seed)
    return response


# Seeds that the service picks stay below 2**32, so that the page's seed field can show them.
RANDOM_SEED_MASK = 2**32 - 1


def random_seed() -> int:
    """Draw a seed in [0, 2**32 - 1] from fresh operating system entropy."""
    return int(np.random.SeedSequence().entropy) & RANDOM_SEED_MASK


def _resolve_latents(body: GenerateRequest, model: GeneratorModel, max_count: int) -> tuple[np.ndarray, int | None]:
    """Return the latent vectors [N, latent_dim] for a request and the seed that drew them (None for z)."""
    if body.z is None:
        seed = random_seed() if body.seed is None else body.seed
        _check_count(body.count, max_count)
        return model.latents_from_seed(seed, body.count), seed

    vectors = body.latent_batch()
    _check_count(len(vectors), max_count)
    for index, vector in enumerate(vectors):
        if len(vector) != model.latent_dim:
            raise HTTPException(
                status_code=422,
                detail=f"{body.vector_label(index)} has length {len(vector)}, but model {model.key} "
                f"takes latent vectors of length {model.latent_dim}",
            )

    with np.errstate(over="ignore"):
        latents = np.asarray(vectors, dtype=np.float32)
    if not np.isfinite(latents).all():
        row, column = np.argwhere(~np.isfinite(latents))[0]
        raise HTTPException(
            status_code=422,
            detail=f"{body.vector_label(row)}[{column}] is {vectors[row][column]}, outside the float32 range: "
            f"use values of magnitude below 3.4e38",
        )
    return latents, None


def _check_count(count: int, max_count: int) -> None:
    # The request schema caps the count at MAX_COUNT, and settings may set a lower limit.
    if count > max_count:
        raise HTTPException(
            status_code=422, detail=f"{count} images requested, but this server makes at most {max_count} per request"
        )


def _json_response(model: GeneratorModel, seed: int | None, latents: np.ndarray, images: np.ndarray) -> JSONResponse:
    pngs = [images_to_png(images[index : index + 1], model.value_range) for index in range(len(images))]
    grid = pngs[0] if len(pngs) == 1 else images_to_png(images, model.value_range)
    body = {
        "model": model.name,
        "version": model.version,
        "seed": seed,
        "images": [base64.b64encode(png).decode("ascii") for png in pngs],
        "grid": base64.b64encode(grid).decode("ascii"),
        "latents": latents.tolist(),
    }
    return JSONResponse(content=body)
