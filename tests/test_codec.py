"""Case data sent to Temporal is encrypted: the history holds no caseworker text in the clear,
keys can be rotated, and payloads from before encryption still read."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from domain.case import DecideToAssess, StartAssessment
from statutory import london_date
from tests.test_assessment_workflow import add_child, running_worker
from config.settings import new_key
from services.codec import EncryptionCodec, parse_key
from workflows.assessment import AssessmentWorkflow

SECRET = "Mother in hospital; grandmother caring at 12 Elm Road"


async def test_history_holds_no_case_text_in_the_clear(dev_env, sqlite_url, executor):
    async with running_worker(dev_env, sqlite_url, executor) as settings:
        ref = f"C-{uuid.uuid4().hex[:8].upper()}"
        today = london_date(await dev_env.get_current_time())
        handle = await dev_env.client.start_workflow(
            AssessmentWorkflow.run,
            StartAssessment(reference=ref, child_id=add_child(sqlite_url),
                            request_date=today - timedelta(days=3)),
            id=f"assessment-{ref}", task_queue=settings.task_queue)
        await handle.execute_update("decide_to_assess", DecideToAssess(
            decision="refuse", decided_on=today, reason=SECRET))
        await handle.result()
        # The same history read by a client that has no key: sealed payloads only.
        raw = await Client.connect(dev_env.client.service_client.config.target_host)
        history = await raw.get_workflow_handle(handle.id).fetch_history()
        blob = history.to_json()
        assert SECRET not in blob and "Elm Road" not in blob
        assert str(today - timedelta(days=3)) not in blob  # the request date
        # ...and the keyed client reads it back.
        assert (await handle.result()).close_reason == SECRET


async def test_rotated_keys_still_open_old_payloads_and_plain_ones_pass_through():
    old, new = parse_key(new_key()), parse_key(new_key())
    sealed_old = await EncryptionCodec(old).encode([Payload(data=b"before rotation")])
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"from before encryption"')
    rotated = EncryptionCodec(new, retired=[old])
    opened = await rotated.decode([*sealed_old, plain])
    assert [p.data for p in opened] == [b"before rotation", b'"from before encryption"']
    with pytest.raises(ValueError, match="unknown key id"):
        await EncryptionCodec(new).decode(sealed_old)
    sealed = await rotated.encode([Payload(data=b"x")])
    assert sealed[0].data != b"x" and sealed[0].metadata["encoding"] == b"binary/encrypted"


def test_a_bad_key_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="ehc keygen"):
        parse_key("not base64!")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key("c2hvcnQ=")
