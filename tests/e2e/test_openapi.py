"""The OpenAPI document is good enough to generate a client from: every operation says
what it does, what it answers (a schema for every success), which credentials it takes,
and that its errors are problem+json."""

from __future__ import annotations

from typing import Any

import pytest

from hub.api.app import create_app
from tests.e2e.conftest import RunningHub

pytestmark = pytest.mark.integration

PROBLEM_REF = "#/components/schemas/ProblemDetails"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


@pytest.fixture
def doc(running: RunningHub) -> dict[str, Any]:
    return create_app(running.hub).openapi()


def test_every_operation_has_a_description_and_a_typed_success(doc: dict[str, Any]) -> None:
    missing, untyped = [], []
    for method, path, op in _operations(doc):
        if not (op.get("description") or "").strip():
            missing.append(f"{method} {path}")
        for code, response in op["responses"].items():
            if not code.startswith("2") or code == "204":
                continue
            content = response.get("content") or {}
            if not content or any(not media.get("schema") for media in content.values()):
                untyped.append(f"{method} {path} {code}")
            for media in content.values():
                schema = media.get("schema", {})
                # a bare object is no contract: it must name its members or a model
                if schema.get("type") == "object" and not (
                    schema.get("properties") or schema.get("additionalProperties")
                ):
                    untyped.append(f"{method} {path} {code} (bare object)")
    assert missing == []
    assert untyped == []


def test_every_error_is_documented_as_problem_json(doc: dict[str, Any]) -> None:
    assert "ProblemDetails" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        errors = {c: r for c, r in op["responses"].items() if not c.startswith("2")}
        assert "4XX" in errors, f"{method} {path}"
        for code, response in errors.items():
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], f"{method} {path} {code}"
            assert content["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}


def test_every_operation_names_its_credentials(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}
    assert schemes["agentBasic"]["scheme"] == "basic"
    for method, path, op in _operations(doc):
        names = {name for requirement in op.get("security", []) for name in requirement}
        if path.startswith("/admin"):
            assert names == {"adminToken"}, f"{method} {path}"
            assert "401" in op["responses"] and "403" in op["responses"]
        elif path.startswith("/sif"):
            assert names == {"agentBasic"}, f"{method} {path}"
        elif path.startswith("/health"):
            assert names == set(), f"{method} {path}"


def test_the_agreement_body_is_typed(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/admin/agreements"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert {"id", "version", "recipients", "rules", "schools"} <= set(schema["properties"])
    detail = doc["paths"]["/admin/agreements/{agreement_id}"]["get"]["responses"]["200"]
    ref = detail["content"]["application/json"]["schema"]["$ref"]
    model = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"lifecycle", "standing", "versions", "approvals", "pupils"} <= set(model["properties"])
