"""The professional's secure advice page over real HTTP, against a worker on the real Temporal
dev server: what the page shows (and does not), advice and documents taken once and only once,
delays reported, and every kind of bad link, bad file or unavailable service getting a clear
GOV.UK page that changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import uuid
import zipfile
from contextlib import asynccontextmanager
from datetime import date, timedelta

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlmodel import Session, select

from services.links import make_advice_token
from api import advice_portal as portal
from services import advice_portal as advice
from services import uploads
from services.clock import today
from store import tables as t
from store.db import engine_for
from tests.conftest import free_port, settings_for
from tests.test_api import day, new_request, ok, serve_api, wait_for_record
from worker.main import build_worker

COUNCIL = "Exampleshire County Council"
SEND_TEAM = "send.team@exampleshire.example"
SERVICE = "Exampleshire Community Paediatrics"
PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\n" + bytes(range(256)) + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40)
MB = 1024 * 1024


def long_date(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def odt_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text",
                   compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", "<office:document-content/>")
    return buf.getvalue()


@asynccontextmanager
async def portal_system(dev_env, db_url, executor, smtp):
    """A worker and the API, with a link secret, the council's name and a mail server."""
    settings = settings_for(db_url, f"portal-{uuid.uuid4().hex[:8]}",
                            link_secret="portal-test-secret", council_name=COUNCIL,
                            send_team_email=SEND_TEAM, smtp_host=smtp.host, smtp_port=smtp.port,
                            public_base_url="https://ehc.exampleshire.example")
    async with build_worker(dev_env.client, settings, executor):
        async with serve_api(settings, dev_env.client) as http:
            yield settings, http


def add_service(db_url: str) -> str:
    with Session(engine_for(db_url)) as s:
        svc = t.Service(name=f"{SERVICE} {uuid.uuid4().hex[:6]}", agency="health",
                        team_email="paeds@health.example")
        s.add(svc)
        s.commit()
        return svc.id


async def open_request(http: httpx.AsyncClient, db_url: str, *, requested_on: str = day(31),
                       service_id: str | None = None) -> tuple[str, dict]:
    """A case whose health advice was requested; returns (reference, child)."""
    body = new_request()
    ref = (await ok(await http.post("/api/assessments", json=body), 201))["reference"]
    base = f"/api/cases/{ref}"
    await ok(await http.post(f"{base}/decision-to-assess",
                             json={"decision": "assess", "decided_on": day(30)}))
    item = {"source": "health", "requested_on": requested_on}
    if service_id:
        item["service_id"] = service_id
    await ok(await http.post(f"{base}/advice-requests", json={"items": [item]}))
    await wait_for_record(db_url, ref, version=3)
    return ref, body["child"]


def submissions(db_url: str, ref: str) -> list[t.AdviceSubmission]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.AdviceSubmission)
                           .where(t.AdviceSubmission.case_reference == ref)).all())


def documents(db_url: str, submission_id: str) -> list[t.AdviceDocument]:
    with Session(engine_for(db_url)) as s:
        return list(s.exec(select(t.AdviceDocument)
                           .where(t.AdviceDocument.submission_id == submission_id)).all())


def count_documents(db_url: str) -> int:
    with Session(engine_for(db_url)) as s:
        return len(s.exec(select(t.AdviceDocument.id)).all())


def assert_secure_headers(r: httpx.Response) -> None:
    assert r.headers["cache-control"].startswith("no-store")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"].startswith("text/html")
    assert "Traceback" not in r.text


def assert_page(r: httpx.Response, status: int, *fragments: str) -> str:
    assert r.status_code == status, (r.status_code, r.text[-3000:])
    assert_secure_headers(r)
    for fragment in fragments:
        assert fragment in r.text, (fragment, r.text[-3000:])
    return r.text


def advice_form(name: str = "Dr Rhys Owen", role: str = "Community paediatrician",
                text: str = "Needs: speech and language support twice weekly.") -> dict:
    return {"advice": text, "name": name, "role": role}


async def advice_item(http: httpx.AsyncClient, ref: str, key: str = "health") -> dict:
    case = await ok(await http.get(f"/api/cases/{ref}"))
    return next(a for a in case["view"]["case"]["advice"] if a["key"] == key)


# --- the whole path -----------------------------------------------------------------------------


async def test_advice_sent_through_the_link_counts_once(dev_env, db_url, executor, smtp_server,
                                                         caplog):
    caplog.set_level(logging.DEBUG)
    async with portal_system(dev_env, db_url, executor, smtp_server) as (settings, http):
        ref, child = await open_request(http, db_url, service_id=add_service(db_url))
        token = make_advice_token(settings, ref, "health")
        url = f"/advice/{token}"

        page = assert_page(await http.get(url), 200, COUNCIL, ref, "Medical advice",
                           long_date(date.fromisoformat(day(31))),
                           long_date(date.fromisoformat(day(73))), "overdue by 77 days",
                           SERVICE, "Noah E.", f'action="{url}"', f'action="{url}/delay"',
                           'type="file"', "multiple")
        # the child is identified minimally: never the full name or date of birth
        assert child["family_name"] not in page
        assert "2016-09-01" not in page and "1 September 2016" not in page
        assert 'href="/directory"' not in page  # no staff navigation on the public page

        r = await http.post(url, data=advice_form(),
                            files=[("documents", ("Health advice.pdf", PDF, "application/pdf"))])
        assert_page(r, 200, "Advice received", f"<strong>{ref}</strong>", "Health advice.pdf",
                    long_date(today()))

        [sub] = submissions(db_url, ref)
        assert (sub.kind, sub.status, sub.advice_key) == ("advice", "accepted", "health")
        assert sub.submitted_by == "Dr Rhys Owen, Community paediatrician"
        assert sub.text.startswith("Needs: speech and language")
        [doc] = documents(db_url, sub.id)
        assert (doc.filename, doc.content_type, doc.size) == ("Health advice.pdf",
                                                              "application/pdf", len(PDF))
        assert doc.sha256 == hashlib.sha256(PDF).hexdigest()

        case = await ok(await http.get(f"/api/cases/{ref}"))
        item = next(a for a in case["view"]["case"]["advice"] if a["key"] == "health")
        assert item["received_on"] == today().isoformat()
        assert item["submission_id"] == sub.id
        received = [e for e in case["timeline"] if e["kind"] == "advice.received"]
        assert len(received) == 1
        assert received[0]["actor"] == "professional: Dr Rhys Owen"
        assert received[0]["data"]["submission"] == sub.id

        download = await http.get(f"/api/cases/{ref}/submissions/{sub.id}/documents/{doc.id}")
        assert download.status_code == 200
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert 'filename="Health advice.pdf"' in disposition
        assert download.headers["x-content-type-options"] == "nosniff"
        for wrong in (f"/api/cases/EHC-ZZZZ-ZZZZ/submissions/{sub.id}/documents/{doc.id}",
                      f"/api/cases/{ref}/submissions/{uuid.uuid4().hex}/documents/{doc.id}",
                      f"/api/cases/{ref}/submissions/{sub.id}/documents/{doc.id + 1000}"):
            assert (await http.get(wrong)).status_code == 404

        # the same link again: the advice is in, there is no form, and nothing is added
        again = assert_page(await http.get(url), 200, "already been received",
                            long_date(today()), ref)
        assert "<form" not in again and "Send your advice" not in again
        assert_page(await http.post(url, data=advice_form(text="A second go"),
                                    files=[("documents", ("b.pdf", PDF, "application/pdf"))]),
                    409, "already been received")
        assert_page(await http.post(f"{url}/delay", data={"reason": "Too late now",
                                                          "delay-name": "Dr Owen"}),
                    409, "already been received")
        assert len(submissions(db_url, ref)) == 1
        assert len(documents(db_url, sub.id)) == 1
        case = await ok(await http.get(f"/api/cases/{ref}"))
        assert [e["kind"] for e in case["timeline"]].count("advice.received") == 1
    # the server never logs the token (the test's own HTTP client does, so it is left out)
    server_logs = [r.getMessage() for r in caplog.records
                   if not r.name.startswith(("httpx", "httpcore"))]
    assert any(f"submission {sub.id}" in m for m in server_logs)
    assert not [m for m in server_logs if token in m]


async def test_a_double_submit_makes_one_submission(dev_env, sqlite_url, executor,
                                                     smtp_server, monkeypatch):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}"
        first, second = await asyncio.gather(*(
            http.post(url, data=advice_form(text=f"Copy {n}"),
                      files=[("documents", (f"advice-{n}.pdf", PDF, "application/pdf"))])
            for n in (1, 2)))
        assert sorted([first.status_code, second.status_code]) == [200, 409], \
            (first.text[-2000:], second.text[-2000:])
        loser = second if second.status_code == 409 else first
        assert_page(loser, 409, "already been received")
        [sub] = submissions(sqlite_url, ref)
        assert sub.status == "accepted"
        assert (await advice_item(http, ref))["submission_id"] == sub.id
        assert len(documents(sqlite_url, sub.id)) == 1 and count_documents(sqlite_url) == 1

        # the race that check cannot see: a submit that read the request while it was still
        # open is stored, refused by the workflow, and removed with its documents
        real_query, calls = advice._query, []

        async def stale_once(*args, **kwargs):
            snapshot = await real_query(*args, **kwargs)
            calls.append(args)
            if len(calls) == 1:
                item = snapshot.advice_item("health")
                item.received_on = item.submission_id = None
            return snapshot

        monkeypatch.setattr(advice, "_query", stale_once)
        r = await http.post(url, data=advice_form(text="Copy 3"),
                            files=[("documents", ("advice-3.pdf", PDF, "application/pdf"))])
        assert_page(r, 409, "already been received", long_date(today()))
        assert len(calls) == 2  # the stale check, then the page after the refusal
        assert [x.id for x in submissions(sqlite_url, ref)] == [sub.id]
        assert count_documents(sqlite_url) == 1


# --- links that open nothing ----------------------------------------------------------------------


async def test_bad_links_get_a_clear_page_and_open_nothing(dev_env, sqlite_url, executor,
                                                            smtp_server):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        token = make_advice_token(settings, ref, "health")
        i = len(token) // 3  # inside the signed payload
        tampered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        other_secret = make_advice_token(
            settings.model_copy(update={"link_secret": "another-council"}), ref, "health")
        for bad in (tampered, "not-a-token", other_secret, "x" * 2000):
            assert_page(await http.get(f"/advice/{bad}"), 404, "This link is not valid",
                        SEND_TEAM)
            assert_page(await http.post(f"/advice/{bad}", data=advice_form()), 404,
                        "This link is not valid")
            assert_page(await http.post(f"/advice/{bad}/delay", data={
                "reason": "Clinic closed", "delay-name": "Dr Owen"}), 404,
                "This link is not valid")

        # a link made 61 days ago (links work for 60): expired, with where to get a new one
        signed_at = TimestampSigner.get_timestamp
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(TimestampSigner, "get_timestamp",
                       lambda self: signed_at(self) - 61 * 86400)
            expired = make_advice_token(settings, ref, "health")
        assert expired != token
        page = assert_page(await http.get(f"/advice/{expired}"), 410, "This link has expired",
                           "next reminder", SEND_TEAM)
        assert ref not in page  # an expired link tells nothing about the case
        assert_page(await http.post(f"/advice/{expired}", data=advice_form(),
                                    files=[("documents", ("a.pdf", PDF, "application/pdf"))]),
                    410, "This link has expired")
        # a token for a case or an advice request that does not exist
        nowhere = make_advice_token(settings, "EHC-ZZZZ-ZZZZ", "health")
        assert_page(await http.get(f"/advice/{nowhere}"), 404, "cannot find this request")
        assert_page(await http.get(f"/advice/{make_advice_token(settings, ref, 'social_care')}"),
                    404, "cannot find this request")
        assert_page(await http.post(f"/advice/{make_advice_token(settings, ref, 'social_care')}",
                                    data=advice_form()), 404, "cannot find this request")
        # the token is the only thing in the URL: the portal is not in the API schema
        schema = await ok(await http.get("/openapi.json"))
        assert not [p for p in schema["paths"] if p.startswith("/advice")]

        assert submissions(sqlite_url, ref) == [] and count_documents(sqlite_url) == 0
        assert (await advice_item(http, ref))["received_on"] is None
        # the genuine link still works
        assert_page(await http.get(f"/advice/{token}"), 200, "Send your advice")


# --- saying it will be late ------------------------------------------------------------------


async def test_a_delay_is_reported_and_the_request_stays_open(dev_env, sqlite_url, executor,
                                                              smtp_server):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}/delay"
        past = today() - timedelta(days=1)

        r = await http.post(url, data={"expected-day": str(past.day),
                                       "expected-month": str(past.month),
                                       "expected-year": str(past.year),
                                       "delay-name": "Dr Ann Lead"})
        page = assert_page(r, 422, "There is a problem", "govuk-error-summary",
                           "Enter why your advice will be late",
                           "must be today or in the future", 'href="#reason"',
                           'href="#expected-day"')
        assert 'value="Dr Ann Lead"' in page  # what was typed is kept
        r = await http.post(url, data={"reason": "Waiting for a clinic letter",
                                       "expected-day": "31", "expected-month": "2",
                                       "expected-year": str(today().year + 1)})
        page = assert_page(r, 422, "must be a real date", "Enter your name")
        assert "Waiting for a clinic letter" in page and 'value="31"' in page
        r = await http.post(url, data={"reason": "Waiting", "expected-day": "3",
                                       "expected-month": "4", "delay-name": "Dr Ann Lead"})
        assert_page(r, 422, "must include a year")
        assert submissions(sqlite_url, ref) == []

        expected = today() + timedelta(days=14)
        r = await http.post(url, data={
            "reason": "The clinic was cancelled; the child is seen again next week",
            "expected-day": str(expected.day), "expected-month": str(expected.month),
            "expected-year": str(expected.year), "delay-name": "Dr Ann Lead",
            "delay-role": "Lead paediatrician"})
        assert_page(r, 200, "Thank you for telling us", ref, long_date(expected))

        [sub] = submissions(sqlite_url, ref)
        assert (sub.kind, sub.status, sub.expected_on) == ("delay", "accepted", expected)
        assert sub.submitted_by == "Dr Ann Lead, Lead paediatrician"
        assert sub.text.startswith("The clinic was cancelled")
        case = await ok(await http.get(f"/api/cases/{ref}"))
        [event] = [e for e in case["timeline"] if e["kind"] == "advice.delay_reported"]
        assert event["actor"] == "professional: Dr Ann Lead"
        assert "clinic was cancelled" in event["summary"]
        item = next(a for a in case["view"]["case"]["advice"] if a["key"] == "health")
        assert item["expected_on"] == expected.isoformat() and item["received_on"] is None
        for _ in range(100):  # and the case record has it
            with Session(engine_for(sqlite_url)) as s:
                row = s.exec(select(t.AdviceItem).where(t.AdviceItem.case_reference == ref,
                                                        t.AdviceItem.key == "health")).one()
            if row.expected_on == expected:
                break
            await asyncio.sleep(0.05)
        assert row.expected_on == expected

        # the request stays open: the page says what was promised and still takes the advice
        assert_page(await http.get(url.removesuffix("/delay")), 200, "Send your advice",
                    "You told us to expect it by", long_date(expected))


# --- files and fields the page refuses -------------------------------------------------------


async def test_bad_files_and_fields_are_refused_and_nothing_is_stored(dev_env, sqlite_url,
                                                                      executor, smtp_server):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}"
        text = "Typed advice that must survive an error <script>alert(1)</script>"

        cases = [
            ([("documents", ("setup.exe", b"MZ\x90\x00" + bytes(100), "application/pdf"))],
             advice_form(text=text), "setup.exe must be a PDF, Word"),
            ([("documents", ("report.pdf", PNG, "application/pdf"))],
             advice_form(text=text), "report.pdf is not a PDF file"),
            ([("documents", ("letter.docx", PDF, "application/octet-stream"))],
             advice_form(text=text), "letter.docx is not a Word file"),
            ([("documents", ("big.pdf", b"%PDF-1.7\n" + bytes(20 * MB - 8), "application/pdf"))],
             advice_form(text=text), "big.pdf must be smaller than 20 MB"),
            ([("documents", (f"part{n}.pdf", b"%PDF-1.7\n" + bytes(17 * MB), "application/pdf"))
              for n in range(3)], advice_form(text=text), "50 MB in total"),
            ([("documents", ("empty.pdf", b"", "application/pdf"))],
             advice_form(text=text), "empty.pdf is empty"),
            ([], advice_form(name="  ", text=text), "Enter your name"),
            ([], advice_form(text="   "), "Enter your advice, or attach it as a document"),
            ([], advice_form(name="N" * 61, text=text), "60 characters or fewer"),
        ]
        for files, data, error in cases:
            r = await http.post(url, data=data, files=files or None)
            page = assert_page(r, 422, "There is a problem", "govuk-error-summary", error)
            if data["advice"].strip():  # kept, and escaped
                assert "Typed advice that must survive an error &lt;script&gt;" in page
                assert "<script>alert(1)</script>" not in page
            if files:
                assert "attach them again" in page

        # more than the whole limit is refused as it arrives, before it is read
        host, port = http.base_url.host, http.base_url.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST {url} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data;"
                     f" boundary=x\r\nContent-Length: {10 ** 9}\r\n\r\n--x\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.read(200), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 413"), head

        assert submissions(sqlite_url, ref) == [] and count_documents(sqlite_url) == 0
        assert (await advice_item(http, ref))["received_on"] is None

        # every accepted format, by name and by content, in one submission
        files = [("documents", ("advice.docx", docx_bytes(), "application/octet-stream")),
                 ("documents", ("chart.PNG", PNG, "image/png")),
                 ("documents", ("../../etc/notes.txt", b"plain notes\n", "text/plain"))]
        r = await http.post(url, data=advice_form(text=""), files=files)
        assert_page(r, 200, "Advice received", "advice.docx", "chart.PNG", "notes.txt")
        [sub] = submissions(sqlite_url, ref)
        names = sorted(d.filename for d in documents(sqlite_url, sub.id))
        assert names == ["advice.docx", "chart.PNG", "notes.txt"]


def test_file_checks_by_name_and_leading_bytes():
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100)
    good = {"a.pdf": PDF, "a.doc": ole, "a.docx": docx_bytes(), "a.odt": odt_bytes(),
            "a.rtf": b"{\\rtf1\\ansi hello}", "a.txt": "café\n".encode(), "a.jpg": JPEG,
            "a.JPEG": JPEG, "a.png": PNG}
    for name, data in good.items():
        assert uploads.check_file(name, data) is None, name
    bad = {"a.doc": PDF, "a.docx": odt_bytes(), "a.odt": docx_bytes(), "a.rtf": b"hello",
           "a.txt": PNG, "b.txt": b"nul\x00byte", "a.jpg": PNG, "a.png": JPEG,
           "a.pdf": b"hello", "a.exe": PDF, "noextension": PDF, "a.html": b"<html>",
           "a.zip": docx_bytes()}
    for name, data in bad.items():
        assert uploads.check_file(name, data) is not None, name
    assert uploads.safe_filename("C:\\Users\\x\\..\\report.pdf") == "report.pdf"
    assert uploads.safe_filename('../"evil";\r\nname.pdf') == "evilname.pdf"
    assert uploads.safe_filename("") == "document"
    headers = portal.attachment_headers("Rapport médical.pdf")
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Rapport m_dical.pdf\"; "
        "filename*=UTF-8''Rapport%20m%C3%A9dical.pdf")


def test_tokens_are_kept_out_of_the_access_log():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/advice/eyJjIjoi.abc-DEF_1?x=1", "1.1",
                                200), None)
    assert portal.RedactAdviceTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /advice/<token>?x=1 HTTP/1.1" 200'
    assert any(isinstance(f, portal.RedactAdviceTokens)
               for f in logging.getLogger("uvicorn.access").filters)


# --- cases that need nothing more, and a service that is down ------------------------------------


async def test_a_closed_case_needs_nothing_more(dev_env, sqlite_url, executor, smtp_server):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}"
        await ok(await http.post(f"/api/cases/{ref}/closure", json={
            "reason": "moved_out_of_area", "closed_on": today().isoformat()}))
        for _ in range(200):
            if not (await wait_for_record(sqlite_url, ref)).is_open:
                break
            await asyncio.sleep(0.05)
        page = assert_page(await http.get(url), 200, "Nothing more is needed", ref)
        assert "<form" not in page
        assert_page(await http.post(url, data=advice_form(),
                                    files=[("documents", ("a.pdf", PDF, "application/pdf"))]),
                    409, "Nothing more is needed")
        assert_page(await http.post(f"{url}/delay", data={"reason": "Clinic closed",
                                                          "delay-name": "Dr Owen"}),
                    409, "Nothing more is needed")
        assert submissions(sqlite_url, ref) == [] and count_documents(sqlite_url) == 0


async def test_temporal_unreachable_stores_nothing(dev_env, sqlite_url, executor, smtp_server):
    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        ref, _ = await open_request(http, sqlite_url)
        token = make_advice_token(settings, ref, "health")
    # the same database, and an API that cannot reach Temporal
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with serve_api(down, None) as http:
        # the page still says what is asked (from the case record)
        assert_page(await http.get(f"/advice/{token}"), 200, "Send your advice", ref)
        assert_page(await http.post(f"/advice/{token}", data=advice_form(),
                                    files=[("documents", ("a.pdf", PDF, "application/pdf"))]),
                    503, "Try again shortly", "Nothing you sent has been saved")
        assert_page(await http.post(f"/advice/{token}/delay", data={
            "reason": "Clinic closed", "delay-name": "Dr Owen"}), 503, "Try again shortly")
    assert submissions(sqlite_url, ref) == [] and count_documents(sqlite_url) == 0


async def test_an_update_whose_outcome_is_lost_is_settled_later(dev_env, sqlite_url, executor,
                                                                 smtp_server, monkeypatch):
    """Temporal goes away while the update runs: the page never claims more than it knows, and
    the submission that counted (and only it) is kept."""
    real_act, real_query = advice._act, advice._query

    async def answer_lost(*args, **kwargs):  # the update is applied; its answer never comes
        await real_act(*args, **kwargs)
        raise ConnectionError("connection reset")

    async def never_sent(*args, **kwargs):
        raise ConnectionError("connection reset")

    calls = []

    async def query_once(*args, **kwargs):  # reachable for the check before storing only
        calls.append(args)
        if len(calls) > 1:
            raise ConnectionError("connection reset")
        return await real_query(*args, **kwargs)

    async with portal_system(dev_env, sqlite_url, executor, smtp_server) as (settings, http):
        # the advice was taken although the answer was lost: the page says so
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}"
        monkeypatch.setattr(advice, "_act", answer_lost)
        assert_page(await http.post(url, data=advice_form()), 200, "Advice received")
        [sub] = submissions(sqlite_url, ref)
        assert sub.status == "accepted"
        assert (await advice_item(http, ref))["submission_id"] == sub.id

        # nothing is known: the submission is kept pending and the professional told to wait
        ref, _ = await open_request(http, sqlite_url)
        url = f"/advice/{make_advice_token(settings, ref, 'health')}"
        monkeypatch.setattr(advice, "_act", never_sent)
        monkeypatch.setattr(advice, "_query", query_once)
        assert_page(await http.post(url, data=advice_form(text="First try")), 503,
                    "could not confirm", "Do not send it again yet")
        [lost] = submissions(sqlite_url, ref)
        assert lost.status == "pending"
        monkeypatch.setattr(advice, "_act", real_act)
        monkeypatch.setattr(advice, "_query", real_query)
        # it never arrived, so the page still asks for it; the second try counts
        assert_page(await http.get(url), 200, "Send your advice")
        assert_page(await http.post(url, data=advice_form(text="Second try")), 200,
                    "Advice received")
        # and the next visit removes the first try, which can never count
        assert_page(await http.get(url), 200, "already been received")
        [kept] = submissions(sqlite_url, ref)
        assert kept.id != lost.id and kept.status == "accepted" and kept.text == "Second try"
        assert (await advice_item(http, ref))["submission_id"] == kept.id


def test_a_closed_review_cycle_is_called_an_annual_review():
    """The page for a link whose case has ended named every case 'the assessment', an annual
    review cycle too."""
    from api.advice_portal import _stopped
    from config.settings import Settings
    from domain.case import AdviceItem, ReviewPolicy, ReviewSnapshot
    from services.advice_portal import Ask, RequestClosed
    from store import tables as t

    ref = "EHC-TEST-R001.R2"
    snapshot = ReviewSnapshot(reference=ref, plan_reference="EHC-TEST-R001", cycle=2,
                              child_id="c", stage="closed", anchor_on=today(),
                              plan_issued_on=today(), policy=ReviewPolicy())
    item = AdviceItem(key="health", source="health", rule_id="review.advice_circulated_due",
                      requested_on=today(), due=today())
    ask = Ask(reference=ref, key="health", case=t.Case(reference=ref, is_open=False),
              snapshot=snapshot, item=item, child="Sam E.", service=None)
    html = _stopped(Settings(_env_file=None), RequestClosed(ask), 200, "opening").body.decode()
    assert "Nothing more is needed" in html
    assert f"The annual review for case {ref} has finished or been closed" in html
