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
