"""One definition of each fact, used everywhere: what the import accepts, the rest of the
system understands."""

from __future__ import annotations

from datetime import date

import pytest

from services.plan_file import parse_setting_type as import_setting_type
from statutory.phase import SETTINGS, SettingType
from store import tables as t
from store.cohort import transfer_for

TODAY = date(2026, 12, 7)


@pytest.mark.parametrize("setting", list(SettingType))
def test_every_setting_type_the_import_accepts_the_cohort_understands(setting):
    """The import once accepted 'other' and the phase-transfer page then refused the same
    plan ("'other' is not a setting type"): one vocabulary now, statutory.phase.SettingType."""
    assert import_setting_type(setting.value) is setting
    first = SETTINGS[setting].first_year
    plan = t.Plan(reference="EHC-VOCAB", child_id="c", issued_on=date(2024, 1, 10),
                  workflow_id="review-EHC-VOCAB", nc_year=first.value, nc_year_as_of=TODAY,
                  setting_type=setting.value)
    transfer = transfer_for(plan, TODAY)  # raises PlacementProblem if not understood
    assert transfer is None or transfer.deadline.due.year >= TODAY.year


def test_a_year_6_child_in_alternative_provision_is_in_next_years_cohort():
    plan = t.Plan(reference="EHC-AP", child_id="c", issued_on=date(2024, 1, 10),
                  workflow_id="review-EHC-AP", nc_year="6", nc_year_as_of=TODAY,
                  setting_type="other")
    transfer = transfer_for(plan, TODAY)
    assert (transfer.kind, transfer.transfer_year, transfer.from_phase.value,
            transfer.to_phase.value) == ("school", 2027, "primary", "secondary")


@pytest.mark.parametrize("ref, ok", [("EHC-004127", True), ("ABC", True), ("A" * 20, True),
                                     ("EHC-", False), ("-EHC", False), ("AB", False),
                                     ("A" * 21, False), ("ehc-1", False), ("EHC-1.R2", False)])
def test_a_case_reference_is_one_shape_for_the_api_and_the_import(ref, ok):
    """The API allowed a trailing hyphen ('EHC-') that the import refused: one pattern now
    (domain.identifiers.REFERENCE_PATTERN), the import's."""
    from pydantic import ValidationError

    from domain.identifiers import is_reference
    from services.cases import StartAssessmentIn

    assert is_reference(ref) is ok
    body = {"child": {"given_name": "Sam", "family_name": "Example",
                      "date_of_birth": "2016-04-02"},
            "request_date": "2026-09-01", "case_reference": ref}
    if ok:
        assert StartAssessmentIn.model_validate(body).case_reference == ref
    else:
        with pytest.raises(ValidationError):
            StartAssessmentIn.model_validate(body)


def test_references_and_workflow_ids_are_built_and_read_in_one_place():
    from domain.identifiers import (is_review_cycle, new_reference, review_reference,
                                    split_cycle, workflow_id_for)

    ref = new_reference()
    assert ref.startswith("EHC-") and len(ref) == 13 and not is_review_cycle(ref)
    cycle = review_reference(ref, 3)
    assert split_cycle(cycle) == (ref, 3) and is_review_cycle(cycle)
    assert workflow_id_for(ref) == f"assessment-{ref}"
    assert workflow_id_for(cycle) == f"review-{ref}"
    assert split_cycle(".R2") is None and split_cycle("EHC-1.R") is None


def test_who_may_hold_a_case_is_one_rule_for_starting_and_reassigning(sqlite_url):
    """Starting an assessment gave it to any active account named, an administrator too;
    reassigning took only caseworkers and managers. One rule now: the reassignment's."""
    from sqlmodel import Session

    from services.allocation import holder
    from services.cases import caseworker_for
    from services.errors import ServiceError
    from store.db import engine_for

    with Session(engine_for(sqlite_url)) as s:
        for uid, role, active in (("cw", "caseworker", True), ("mg", "manager", True),
                                  ("ad", "admin", True), ("gone", "caseworker", False)):
            s.add(t.StaffUser(id=uid, email=f"{uid}@council.example", name=uid, role=role,
                              password_hash="x", active=active))
        s.commit()
        for check in (lambda u: caseworker_for(s, u, None), lambda u: holder(s, u)):
            assert check("cw") == "cw" and check("mg") == "mg"
            for refused in ("ad", "gone", "nobody"):
                with pytest.raises(ServiceError) as e:
                    check(refused)
                assert e.value.status == 422 and "caseworker or manager" in e.value.message
