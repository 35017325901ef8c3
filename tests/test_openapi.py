"""The server's `/openapi.json` says what it accepts and answers (haima/server/openapi.py):
valid OpenAPI 3.1, request bodies with examples the server accepts, documented statuses
and response schemas, and links a stateful client can follow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

pytest.importorskip("schemathesis")

from schemathesis.specs.openapi.definitions import OPENAPI_31

from tests.helpers.server import ServerProcess

Document = dict[str, Any]
METHODS = ("get", "put", "post", "delete")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("openapi")
    with ServerProcess(root / "store", "--no-preload", "--no-access-log") as process:
        yield process


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> Document:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    doc: Document = response.json()
    return doc


def operations(doc: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolved(doc: Document, schema: Any) -> Any:
    """`schema` with references to the document's components replaced by them."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            match = re.fullmatch(r"#/components/schemas/(.+)", ref)
            assert match, f"unexpected reference {ref}"
            return resolved(doc, doc["components"]["schemas"][match.group(1)])
        return {k: resolved(doc, v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolved(doc, v) for v in schema]
    return schema


def media(content: dict[str, Any]) -> dict[str, Any]:
    assert list(content) == ["application/json"], list(content)
    value: dict[str, Any] = content["application/json"]
    return value


def test_the_document_is_valid_openapi_3_1(document: Document) -> None:
    assert document["openapi"].startswith("3.1")
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    # The meta-schema leaves schema objects alone: each must be valid JSON Schema 2020-12.
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for _, _, op in operations(document):
        contents = [r.get("content", {}) for r in op["responses"].values()]
        contents.append(op.get("requestBody", {}).get("content", {}))
        for content in contents:
            for value in content.values():
                jsonschema.Draft202012Validator.check_schema(resolved(document, value["schema"]))


def test_schemathesis_loads_every_operation(document: Document) -> None:
    import schemathesis

    loaded = schemathesis.openapi.from_dict(document)
    found = [result.ok() for result in loaded.get_all_operations()]
    assert len(found) == sum(1 for _ in operations(document))


def test_every_body_is_described_with_an_example_that_fits_it(document: Document) -> None:
    without_body = {"buildIndex", "reset"}
    for path, method, op in operations(document):
        if method in ("get", "delete") or op["operationId"] in without_body:
            assert "requestBody" not in op, (method, path)
            continue
        body = media(op["requestBody"]["content"])
        schema = resolved(document, body["schema"])
        assert schema.get("type") == "object" and schema.get("properties"), (method, path)
        jsonschema.validate(body["example"], schema)
    for _, _, op in operations(document):
        for response in op["responses"].values():
            for value in response.get("content", {}).values():
                if "example" in value:
                    jsonschema.validate(value["example"], resolved(document, value["schema"]))


def test_statuses_are_the_ones_the_server_answers(document: Document) -> None:
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components  # FastAPI's 422 body, never sent
    for path, method, op in operations(document):
        responses = op["responses"]
        where = (method, path)
        if path in ("/", "/metrics"):
            continue  # app.py's service routes, documented by FastAPI's defaults
        ok = responses["200"]["content"]
        assert ok and all(v["schema"] for v in ok.values()), where
        assert "500" in responses, where
        assert ("401" in responses) == (path != "/api/v2/heartbeat"), where
        if "requestBody" in op or method in ("post", "put"):
            assert "413" in responses, where
        if "requestBody" in op:
            assert "400" in responses, where
        if "{collection_id}" in path:
            assert {"404", "503", "504"} <= set(responses), where
        if "422" in responses:
            assert responses["422"]["description"].startswith("Not sent"), where
        error = "OpenAIError" if path.startswith("/v1/") else "Error"
        for status, response in responses.items():
            if status == "200":
                continue
            ref = media(response["content"])["schema"]["$ref"]
            expected = "Error" if status in ("401", "413") else error
            assert ref == f"#/components/schemas/{expected}", (where, status)


def test_links_lead_from_created_things_to_what_uses_them(document: Document) -> None:
    by_id = {op["operationId"]: (path, method, op) for path, method, op in operations(document)}
    uses_a_collection = {
        op["operationId"]
        for path, method, op in operations(document)
        if "{collection_id}" in path or path.endswith("/collections/{name}")
    }
    create = by_id["createCollection"][2]
    assert set(create["responses"]["200"]["links"]) == uses_a_collection
    for path, _, op in operations(document):
        for link in op["responses"]["200"].get("links", {}).values():
            _, _, target = by_id[link["operationId"]]
            names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
            assert set(link["parameters"]) == names, (path, link)
            ok_schema = resolved(document, media(op["responses"]["200"]["content"])["schema"])
            for expression in link["parameters"].values():
                source = expression.split("#/")[-1].split(".")[-1]
                if expression.startswith("$response.body#/"):
                    assert source in ok_schema["properties"], (path, expression)
                elif expression.startswith("$request.body#/"):
                    body = media(op["requestBody"]["content"])["schema"]
                    assert source in body["required"], (path, expression)
                else:
                    assert expression.startswith("$request.path."), expression
                    assert "{" + source + "}" in path, (path, expression)


def test_the_examples_are_accepted_and_answered_as_documented(
    server: ServerProcess, document: Document
) -> None:
    """Each documented request example, sent in order in a fresh tenant, succeeds; each
    answer fits the documented 200 schema."""
    by_id = {op["operationId"]: (path, method, op) for path, method, op in operations(document)}
    values = {"tenant": "acme", "database": "docs"}

    def send(operation_id: str) -> Any:
        path, method, op = by_id[operation_id]
        body = media(op["requestBody"]["content"])["example"] if "requestBody" in op else None
        url = server.url + re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        response = httpx.request(method, url, json=body, timeout=120)
        assert response.status_code == 200, (operation_id, response.text)
        schema = resolved(document, media(op["responses"]["200"]["content"])["schema"])
        jsonschema.validate(response.json(), schema)
        return response.json()

    assert media(by_id["createTenant"][2]["requestBody"]["content"])["example"]["name"] == "acme"
    send("createTenant")
    assert media(by_id["createDatabase"][2]["requestBody"]["content"])["example"]["name"] == "docs"
    send("createDatabase")
    collection = send("createCollection")
    values.update(collection_id=collection["id"], name=collection["name"])
    for operation_id in (
        "addRecords",
        "upsertRecords",
        "updateRecords",
        "getRecords",
        "queryRecords",
        "countRecords",
        "deleteRecords",
        "buildIndex",
        "getCollectionById",
        "getCollection",
        "createEmbeddings",
        "listModels",
    ):
        send(operation_id)
    assert send("updateCollection")["name"] == "notes-2024"
