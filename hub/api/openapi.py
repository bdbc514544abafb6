"""The OpenAPI document as clients should read it: every error is problem+json (RFC 9457),
and every operation names the credentials it takes. Added once here, after FastAPI has
built the document, so no route can forget either."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from hub.api.problems import PROBLEM


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: the shape of every error the HTTP API returns. Routes add
    members of their own (e.g. `errors` for a request that fails validation, `checks` for
    readiness, `required_roles` for a 403)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI naming the problem type")
    title: str = Field(description="Short, the same for every occurrence of the problem")
    status: int = Field(description="The HTTP status code")
    detail: str | None = Field(default=None, description="This occurrence, for a person")


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A named admin user's token (`hub admin add`), or HUB_ADMIN_TOKEN",
    },
    "agentBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "A school MIS agent's id and secret, as configured",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "HUB_METRICS_TOKEN, when set",
    },
}

# Which credentials a path takes, by prefix (the longest match wins); others are open.
SECURITY_BY_PREFIX: dict[str, str] = {
    "/admin": "adminToken",
    "/sif": "agentBasic",
    "/ingest": "agentBasic",
    "/metrics": "metricsToken",
}

_REF = "#/components/schemas/ProblemDetails"


def problem_doc(description: str) -> dict[str, Any]:
    """A route's documented error response: `responses={404: problem_doc("...")}`."""
    return {"description": description, "content": {PROBLEM: {"schema": {"$ref": _REF}}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components.setdefault("securitySchemes", {}).update({k: v for k, v in SECURITY_SCHEMES.items()})
    for path, operations in doc.get("paths", {}).items():
        scheme = _scheme_for(path)
        for operation in operations.values():
            _problems(operation, secured=scheme is not None)
            if scheme and "security" not in operation:
                operation["security"] = [{scheme: []}]
    return doc


def _scheme_for(path: str) -> str | None:
    matches = [p for p in SECURITY_BY_PREFIX if path == p or path.startswith(p + "/")]
    return SECURITY_BY_PREFIX[max(matches, key=len)] if matches else None


def _problems(operation: dict[str, Any], *, secured: bool) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = problem_doc("The request is invalid")
    if secured:
        responses.setdefault("401", problem_doc("No or wrong credentials"))
        responses.setdefault("403", problem_doc("The role may not do this"))
        responses.setdefault("429", problem_doc("Too many failed authentications"))
    responses.setdefault("4XX", problem_doc("Any other client error"))
    responses.setdefault("503", problem_doc("A dependency is unavailable"))
