"""Fuzzing the whole API (schemathesis, over the app's own OpenAPI document) as each role, and
signed out: every answer is documented (its status, its content type, its body's schema) and
none is a server error.

The system is real: a migrated SQLite database, the Temporal dev server, a worker, the app on
uvicorn. Schemathesis runs as its own process (``schemathesis run``, as a CI step would), one
run per role, each bounded by a few examples per operation, with a fixed seed and
deterministic generation, so a run is repeatable and a failure can be replayed with the
command it prints. The checks are named (``CHECKS``), not "all": the ones left out, and why,
are listed with them. Nothing is skipped silently: every operation of the document must have
been sent requests in each role's run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import settings_for
from tests.http import add_staff, serve_app
from worker.main import build_worker

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

# What each answer must be: no server error; the status, the content type, the headers and the
# body as the document declares them; a request missing a required header refused. Not here:
# negative_data_rejection (pydantic's lax parsing takes `0` as a date, 1 January 1970, and as
# false: issue 16's report, left for a change of its own), positive_data_acceptance (a
# schema-valid body the rules refuse, like a date in the future, is a 422 by design),
# use_after_free and ensure_resource_availability (no resource is ever deleted), ignored_auth
# (the access table is tests/test_auth.py's, by role and route), unsupported_method and
# allow_header_conformance (Starlette's 405s), max_response_time (a loaded CI machine).
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,missing_required_header")
# Each role's run: examples per operation and the phases (no coverage phase: its thousands of
# boundary values per role take minutes; test_every_number_is_bounded_... below sends every
# number's boundary values instead). Signed in as an administrator every route runs, so that run takes
# the most; the other roles reach a subset of the same handlers; signed out every operation
# answers 401 before reading its input, so one example each says so.
RUNS = {"admin": (4, "examples,fuzzing"), "manager": (2, "examples,fuzzing"),
        "caseworker": (2, "examples,fuzzing"), None: (1, "examples,fuzzing")}
# Two at a time (two cores): the administrator's run beside the three others in turn.
LANES = (("admin",), ("manager", "caseworker", None))
SEED = 16


def schemathesis_args(base: str, role: str | None, token: str | None,
                      report: Path) -> list[str]:
    args = [str(SCHEMATHESIS), "run", f"{base}/openapi.json", "--checks", CHECKS,
            "--max-examples", str(RUNS[role][0]), "--seed", str(SEED),
            "--generation-deterministic", "--phases", RUNS[role][1],
            "--workers", "1", "--request-timeout", "30", "--no-shrink",
            "--suppress-health-check", "all",
            "--continue-on-failure", "--no-color", "--output-truncate", "true",
            "--report", "ndjson", "--report-ndjson-path", str(report)]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    return args


async def run_schemathesis(base: str, role: str | None, token: str | None,
                           report: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *schemathesis_args(base, role, token, report), cwd=report.parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"})
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace"), time.monotonic() - started


def operations_in(report: Path) -> set[str]:
    """The operations a run sent requests to, from its ndjson events."""
    found = set()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        body = event.get("ScenarioFinished")
        if body and body["status"] != "skip" and body["recorder"].get("interactions"):
            found.add(body["recorder"]["label"])
    return found


@pytest.mark.timeout(900)
async def test_the_api_answers_fuzzed_requests_as_documented_for_every_role(
        dev_env, sqlite_url, executor, tmp_path):
    settings = settings_for(sqlite_url, f"fuzz-{uuid.uuid4().hex[:8]}")
    tokens = {role: add_staff(sqlite_url, role)[1] for role in ("admin", "manager",
                                                                "caseworker")}
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role="admin") as http:
            # One real case, so the lists and reads have rows to answer with.
            case = await http.post("/api/assessments", json={
                "child": {"given_name": "Fuzz", "family_name": "Example",
                          "date_of_birth": "2016-09-01"},
                "request_date": "2026-01-05", "request_source": "parent"})
            assert case.status_code == 201, case.text
            operations = {f"{m.upper()} {p}" for p, ops in (
                await http.get("/openapi.json")).json()["paths"].items() for m in ops}
            base = str(http.base_url).rstrip("/")
            # EHC_FUZZ_REPORTS: keep each role's report there (schemathesis's ndjson events).
            kept = Path(os.environ.get("EHC_FUZZ_REPORTS") or tmp_path)
            failures, timings = [], {}

            async def lane(roles) -> None:
                for role in roles:
                    name = role or "signed out"
                    report = kept / f"{name.replace(' ', '-')}.ndjson"
                    code, out, took = await run_schemathesis(base, role, tokens.get(role),
                                                             report)
                    timings[name] = round(took, 1)
                    if code != 0:
                        failures.append(f"--- as {name} (exit {code}):\n{out}")
                    assert report.exists(), out
                    missed = operations - operations_in(report)
                    assert not missed, (name, sorted(missed))

            begun = time.monotonic()
            await asyncio.gather(*(lane(roles) for roles in LANES))
            timings["all"] = round(time.monotonic() - begun, 1)
    print("schemathesis seconds by role:", timings)
    assert not failures, "\n".join(failures)


# --- the numbers' bounds and the error bodies, without the fuzzer (fast: no Temporal) ----------


def unbounded_numbers(openapi: dict) -> list[str]:
    """Every integer or number a request can carry (parameter or body) with no minimum or no
    maximum in the document."""
    components = openapi["components"]["schemas"]
    found: list[str] = []

    def walk(schema, where: str, seen: frozenset) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rpartition("/")[2]
            if name not in seen:
                walk(components[name], f"{where} ({name})", seen | {name})
            return
        if schema.get("type") in ("integer", "number") and not (
                {"minimum", "exclusiveMinimum"} & set(schema)
                and {"maximum", "exclusiveMaximum"} & set(schema)):
            found.append(where)
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(sub, where, seen)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}", seen)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]", seen)

    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                walk(param["schema"], f"{method.upper()} {path} {param['name']}", frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content.get("schema", {}), f"{method.upper()} {path} body", frozenset())
    return found


def declared(openapi: dict, method: str, path: str, status: int) -> dict:
    """The body schema an operation declares for ``status``, resolvable on its own."""
    response = openapi["paths"][path][method]["responses"][str(status)]
    return {**response["content"]["application/json"]["schema"],
            "components": openapi["components"]}


async def test_every_number_is_bounded_and_a_number_past_its_bound_is_a_clear_422(sqlite_url):
    from tests.conftest import free_port

    settings = settings_for(sqlite_url, "bounds", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="admin") as http:
        openapi = (await http.get("/openapi.json")).json()
        assert unbounded_numbers(openapi) == []
        # Past each integer parameter's maximum, and far past int64: a 422 that names it.
        for path, operations in openapi["paths"].items():
            for method, operation in operations.items():
                for param in operation.get("parameters", []):
                    schema = param["schema"]
                    schema = next((s for s in schema.get("anyOf", []) if "maximum" in s), schema)
                    if schema.get("type") != "integer" or param["in"] not in ("query", "path"):
                        continue
                    for value in (schema["maximum"] + 1, 10**30):
                        url = path.replace("{" + param["name"] + "}", str(value))
                        url = "/" + "/".join("x" if p.startswith("{") else p
                                             for p in url.split("/")[1:])
                        got = await http.request(method.upper(), url, params={
                            param["name"]: value} if param["in"] == "query" else None,
                            json={} if "requestBody" in operation else None)
                        assert got.status_code == 422, (method, url, value, got.text)
                        assert param["name"] in [e["field"] for e in got.json()["errors"]], \
                            got.text
        # The CSV refuses before it starts: a JSON answer, not a file cut off mid-way.
        csv = await http.get("/api/worklist/late.csv", params={"min_days_overdue": 10**20})
        assert (csv.status_code, csv.headers["content-type"]) == (422, "application/json")
        # Pages read numbers as typed, whatever is typed: never a server error.
        for typed in ("99999999999999999999999", "²", "-1", "1e9"):
            for page in ("/late", "/plans"):
                got = await http.get(page, params={"page": typed})
                assert got.status_code == 200, (page, typed)
            got = await http.get("/late", params={"min_days_overdue": typed})
            assert got.status_code == 422 and "whole number" in got.text, typed
        for cycle in ("²", "99999999999999999999999"):
            got = await http.get(f"/api/plans/EHC-AAAA-BBBB.R{cycle}")
            assert got.status_code == 404, got.text
        # A day so far off that a date counted from it has no year: a 422 that says so.
        for day in ("0001-01-01", "9999-12-31"):
            for path, params in (
                    ("/api/worklist/due-soon", {"today": day, "days": 366}),
                    ("/api/worklist/due-soon.csv", {"today": day, "days": 366}),
                    ("/api/adqa/digest", {"week_ending": day}),
                    ("/api/timescales/assessment", {"request_date": day}),
                    ("/api/reports/outcomes", {"from": day, "to": day}),
                    ("/api/statistics/dfe", {"from": day, "to": day}),
                    ("/api/exports/sen2", {"from": day, "to": day, "format": "csv"}),
                    ("/late", {"today": day, "view": "due_soon", "days": "366"}),
                    ("/statistics", {"from": day, "to": day})):
                got = await http.get(path, params=params)
                assert got.status_code in (200, 422), (path, params, got.text)
                if got.status_code == 422 and path.startswith("/api/"):
                    assert set(got.json()) >= {"detail", "code"}, got.text


async def test_each_declared_error_status_describes_the_real_body(sqlite_url):
    """A real answer of each error status the API gives, checked against the schema its
    operation declares for that status (``api.problems.Problem``)."""
    import jsonschema_rs

    from tests.conftest import free_port
    from tests.http import staff_headers

    settings = settings_for(sqlite_url, "problems", temporal_address=f"127.0.0.1:{free_port()}")
    caseworker = staff_headers(sqlite_url, "caseworker")
    async with serve_app(settings, None, role="admin") as http:
        openapi = (await http.get("/openapi.json")).json()
        assert "HTTPValidationError" not in openapi["components"]["schemas"]
        person = {"email": f"p{uuid.uuid4().hex[:6]}@council.example", "name": "Pat Example",
                  "role": "caseworker", "password": "a long enough password"}
        assert (await http.post("/api/admin/users", json=person)).status_code == 201
        answers = [
            ("post", "/api/admin/users", 400, await http.post(
                "/api/admin/users", content=b"\xb9\x80\xae\x00", headers={
                    "content-type": "application/json"})),
            ("get", "/api/me", 401, await http.get("/api/me", headers={
                "authorization": ""})),
            ("get", "/api/worklist/{which}", 403, await http.get(
                "/api/worklist/late", headers=caseworker)),
            ("get", "/api/directory/services/{service_id}", 404, await http.get(
                "/api/directory/services/nothing-here")),
            ("post", "/api/admin/users", 409, await http.post("/api/admin/users",
                                                               json=person)),
            ("get", "/api/cases", 422, await http.get("/api/cases", params={"limit": 0})),
            ("get", "/api/cases/{reference}", 503, await http.get(
                "/api/cases/EHC-AAAA-BBBB")),
        ]
        for method, path, status, answer in answers:
            assert answer.status_code == status, (path, status, answer.text)
            assert answer.headers["content-type"] == "application/json", (path, status)
            jsonschema_rs.validate(declared(openapi, method, path, status), answer.json())
            assert set(answer.json()) <= {"detail", "code", "errors"}, answer.json()
        # a path that is not there, and a method a path does not take: the same shape
        for answer in (await http.get("/api/nothing"), await http.delete("/api/cases")):
            assert set(answer.json()) == {"detail", "code"}, answer.json()
