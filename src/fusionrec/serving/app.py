"""The HTTP face of a :class:`~fusionrec.serving.service.Service` (FastAPI), and the explorer page.

Every error is a JSON body ``{"error": "...", "request_id": "..."}`` with a 4xx status naming the
problem; an unexpected failure is a 500 with the same shape, logged with its request id, and the server
stays up. Each request is logged as one JSON line (request id, method, path, status, milliseconds);
a caller's ``X-Request-ID`` is kept, else one is made, and it is returned in the same header.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from fusionrec.errors import FusionrecError
from fusionrec.serving.service import MAX_K, ItemFilter, RequestError, Service

log = logging.getLogger("fusionrec.serve")
EXPLORER = Path(__file__).with_name("explorer.html")


class RecommendRequest(BaseModel):
    """``user`` (a known user) or ``history`` (a new user's items, most recent last), not both."""

    user: str | None = None
    history: list[str] | None = None
    k: int = Field(10, description=f"1..{MAX_K}")
    exclude_seen: bool = True
    filters: dict[str, str] = Field(default_factory=dict, description="item-table column -> value it must contain")
    why: bool = Field(False, description="attach the model's strongest attention signal to each item")


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="fusionrec",
        description=f"{service.metadata()['model']} on {service.dataset.name}: recommendations and their reasons",
        version="1",
    )
    app.state.service = service

    @app.middleware("http")
    async def request_log(request: Request, call_next: Any) -> Any:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        log.info(
            json.dumps(
                {
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - start) * 1000, 2),
                }
            )
        )
        return response

    def error(request: Request, status: int, message: str) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "")
        return JSONResponse({"error": message, "request_id": request_id}, status_code=status)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error(request, exc.status, str(exc))

    @app.exception_handler(FusionrecError)
    async def fusionrec_error(request: Request, exc: FusionrecError) -> JSONResponse:
        return error(request, 422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return error(request, 400, f"malformed JSON body: {first.get('ctx', {}).get('error', 'cannot parse')}")
        return error(request, 422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:  # unknown path, wrong method
        return error(request, exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", getattr(request.state, "request_id", ""))
        return error(request, 500, f"internal error ({type(exc).__name__}); the server is still up")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return service.health()

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return service.metadata()

    @app.get("/recommend")
    def recommend_get(
        user: str,
        k: int = 10,
        exclude_seen: bool = True,
        filter: list[str] = Query(default=[], description="column:value, repeatable"),  # noqa: A002
        why: bool = False,
    ) -> dict[str, Any]:
        return service.recommend(user, k, exclude_seen, _filters(filter), why)

    @app.post("/recommend")
    def recommend_post(body: RecommendRequest = Body(...)) -> dict[str, Any]:  # noqa: B008
        if (body.user is None) == (body.history is None):
            raise RequestError(422, "give either user (a known user) or history (a new user's items), not both")
        if body.history is not None:
            return service.recommend_history(body.history, body.k, body.why)
        assert body.user is not None
        filters = [ItemFilter(c, v) for c, v in body.filters.items()]
        return service.recommend(body.user, body.k, body.exclude_seen, filters, body.why)

    @app.get("/similar")
    def similar(item: str, k: int = 10) -> dict[str, Any]:
        return service.similar(item, k)

    @app.get("/explain")
    def explain(user: str, item: str | None = None) -> dict[str, Any]:
        return service.explain(user, item)

    @app.get("/explain/images/{name:path}")
    def explanation_image(name: str) -> FileResponse:
        return FileResponse(service.explanation_image(name), media_type="image/png")

    @app.get("/items/{item}/image")
    def item_image(item: str) -> FileResponse:
        return FileResponse(service.item_image(item))

    @app.get("/users")
    def users(limit: int = Query(20, ge=1, le=1000)) -> dict[str, Any]:
        return {"users": service.some_users(limit)}

    @app.get("/users/{user}/history")
    def history(user: str, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return {"user": user, "items": service.user_history(user, limit)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def explorer() -> str:
        return EXPLORER.read_text(encoding="utf-8")

    return app


def _filters(raw: list[str]) -> list[ItemFilter]:
    out = []
    for f in raw:
        column, sep, value = f.partition(":")
        if not sep or not column:
            raise RequestError(422, f"filter {f!r}: write column:value (e.g. genres:comedy)")
        out.append(ItemFilter(column, value))
    return out


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory`` worker processes (``fusionrec serve --workers N``): the run and
    the index kind come from ``FUSIONREC_SERVE_RUN`` and ``FUSIONREC_SERVE_ANN``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return create_app(
        Service.from_run_dir(os.environ["FUSIONREC_SERVE_RUN"], os.environ.get("FUSIONREC_SERVE_ANN", "auto"))
    )
