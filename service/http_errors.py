"""Exception handlers and the body size check: each turns a failed request into JSON with one readable detail."""

import logging
import sys

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.registry import GenerationError, ModelNotFoundError
from service.schemas import shorten_repr

logger = logging.getLogger(__name__)

JSON_BODY_EXAMPLE = '{"model": "name", "seed": 1}'
SEND_JSON = f"send Content-Type: application/json with a UTF-8 JSON object such as {JSON_BODY_EXAMPLE}"


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(ModelNotFoundError, _handle_model_not_found)
    app.add_exception_handler(GenerationError, _handle_generation_error)
    app.add_exception_handler(Exception, _handle_unexpected_error)


async def _handle_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    # FastAPI's default handler (0.165) echoes each input back, which can be large, and its
    # JSON encoding fails with a 500 on NaN or Infinity. This one names the values in one message.
    errors = error.errors()
    content_type = request.headers.get("content-type")
    detail = "; ".join(_describe_validation_error(item, content_type) for item in errors)
    summary = [{"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]} for item in errors]
    return JSONResponse(status_code=422, content={"detail": detail, "errors": summary})


async def _handle_model_not_found(request: Request, error: ModelNotFoundError) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(error)})


async def _handle_generation_error(request: Request, error: GenerationError) -> JSONResponse:
    logger.error("generation failed: %s", error)
    detail = f"model {error.model_key} failed to generate images; see the server log for the onnxruntime error"
    return JSONResponse(status_code=500, content={"detail": detail})


async def _handle_unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # Starlette re-raises the exception after sending this response, so the server also logs its traceback.
    logger.error("unexpected error in %s %s: %r", request.method, request.url.path, error)
    return JSONResponse(status_code=500, content={"detail": "internal server error; see the server log"})


def _describe_location(location: tuple) -> str:
    source, *path = location
    if source == "query":
        return f"query parameter {'.'.join(str(part) for part in path)}"

    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "body"


def _describe_validation_error(error: dict, content_type: str | None) -> str:
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error", "invalid JSON")
        return f"body is not valid JSON ({reason}): {SEND_JSON}"

    where = _describe_location(tuple(error["loc"]))
    if where == "body" and error["type"] == "missing":
        return f"body is missing: {SEND_JSON}"
    if where == "body" and error["type"] == "model_attributes_type":
        # FastAPI passes the raw bytes on when the Content-Type is not JSON.
        if isinstance(error.get("input"), bytes):
            return f"body has Content-Type {content_type or '(none)'}, which is not JSON: {SEND_JSON}"
        return f"body is {shorten_repr(error.get('input'))}: send a JSON object such as {JSON_BODY_EXAMPLE}"
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
        return message if message.startswith(where) else f"{where}: {message}"
    if error["type"] == "missing":
        return f"{where}: required field is missing"

    return f"{where}: {error['msg']}, got {shorten_repr(error.get('input'))}"


async def _handle_http_error(request: Request, error: StarletteHTTPException) -> Response:
    # FastAPI 0.165 raises HTTPException(400, "There was an error parsing the body") from the
    # parse error when json.loads fails with anything but json.JSONDecodeError.
    detail = _describe_parse_error(error.__cause__) if error.status_code == 400 else None
    if detail is not None:
        return JSONResponse(status_code=422, content={"detail": detail})
    return await http_exception_handler(request, error)


def _describe_parse_error(cause: BaseException | None) -> str | None:
    if isinstance(cause, UnicodeDecodeError):
        return f"body is not valid UTF-8 (byte {cause.start}: {cause.reason}): {SEND_JSON}"
    if isinstance(cause, RecursionError):
        return f"body nests JSON arrays or objects too deeply to parse: {SEND_JSON}"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return (
            f"body contains an integer of more than {sys.get_int_max_str_digits()} digits, which this server "
            f"does not parse: use seeds from 0 to 2**63 - 1 and latent values of magnitude below 3.4e38"
        )
    if isinstance(cause, ValueError):
        return f"body is not valid JSON ({cause}): {SEND_JSON}"
    return None


# Body size limit


def _body_too_large_detail(max_body_bytes: int, size: int | None) -> str:
    body = "request body" if size is None else f"request body of {size} bytes"
    return (
        f"{body} is larger than this server's limit of {max_body_bytes} bytes: send fewer latent vectors "
        f"per request, or a seed and count instead of z. The server's GANFORGE_MAX_BODY_BYTES sets the limit."
    )


def _content_length(scope) -> int | None:
    text = Headers(scope=scope).get("content-length")
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class BodySizeLimit:
    """ASGI middleware that returns 413 for request bodies above `max_body_bytes`.

    A larger Content-Length gets 413 before the endpoint runs. A body without Content-Length,
    sent in chunks, gets 413 once the bytes read pass the limit. Reading then raises an
    HTTPException, which FastAPI passes on to the exception handlers.
    """

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        size = _content_length(scope)
        if size is not None and size > self.max_body_bytes:
            detail = _body_too_large_detail(self.max_body_bytes, size)
            await JSONResponse(status_code=413, content={"detail": detail})(scope, receive, send)
            return

        received = 0

        async def receive_with_limit():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise StarletteHTTPException(413, detail=_body_too_large_detail(self.max_body_bytes, None))
            return message

        await self.app(scope, receive_with_limit, send)
