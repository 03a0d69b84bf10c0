"""The example plans file, dated for any day: ``ehc import example > plans.csv``.

The 13 plans of ``docs/examples/plans.csv`` describe one day, ``EXAMPLE_DAY`` (23 November
2026): their year groups, "in the past", "in the future" and "overdue" are as on that day, and
``docs/import.md`` walks through them as they are. ``example_plans(today)`` gives the same 13
plans as they would be written on ``today``, so that the file imports with no errors on any day,
without ``--today``:

- every date of the plans' history (issued, last reviewed, amendments sent, next meeting) moves
  by the days from ``EXAMPLE_DAY`` to ``today``, so a review overdue by 69 days is still overdue
  by 69 days, a meeting three weeks ahead is still three weeks ahead;
- each child is born as many school years later as ``today`` is after ``EXAMPLE_DAY`` (1
  September to 31 August), on the same day of the year, so every child is in the same year
  group, at the same setting, and the year of each phase transfer moves by the same number of
  years.

``example_plans(EXAMPLE_DAY)`` is the file in ``docs/examples/`` byte for byte (a test checks
it). Pure: the standard library and ``statutory`` only.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from domain.csv_cells import SafeDictWriter
from statutory.phase import academic_year
from statutory.rules import add_months

EXAMPLE_DAY = date(2026, 11, 23)

# docs/examples/plans.csv: the plans as on EXAMPLE_DAY (also the header the import expects).
TEMPLATE = """\
plan_reference,council_person_id,given_name,family_name,date_of_birth,nc_year,setting_name,setting_type,plan_issued_on,last_review_on,last_review_stage,amendments_sent_on,next_meeting_on,next_transfer,caseworker,under_five_cycle_months
EHC-004127,P0019283,Amara,Okafor,2023-05-10,N2,Little Acorns Day Nursery,early_years,2025-10-15,2026-06-22,complete,,,early_years->primary 2027,Morgan Manager,4
EHC-003981,P0017734,Oliver,Bennett,2019-11-02,2,Meadow Lane Infant School,infant,2024-01-19,2025-12-03,,,2026-11-30,infant->junior 2027,alex caseworker,
EHC-002866,P0012051,Zoë,Kowalczyk,2016-01-14,Year 6,Hillside Primary School,primary,2020-03-11,2026-02-09,complete,,,primary->secondary 2027,caseworker@northbridge.example,
EHC-001702,P0008816,Ibrahim,Hassan,2011-03-30,11,Kingsmead Academy,secondary,2017-09-05,2026-03-17,complete,,,secondary->post16 2027,caseworker@northbridge.example,
EHC-001455,P0007420,Chloe,Whitfield,2009-12-08,12,Riverside College,post16,2016-05-20,2026-06-25,complete,,,,manager@northbridge.example,
EHC-004390,P0021107,Reuben,Ashworth,2018-02-27,4,St Anne's CE Primary School,primary,2026-05-14,,,,,,alex caseworker,
EHC-002204,P0010388,Maya,Choudhury,2012-10-05,Y9,Oakfield School,special,2019-02-01,2025-12-10,complete,,2026-12-08,,Alex Caseworker,
EHC-001938,P0009652,Callum,Reid,2014-06-18,8,Northgate High School,secondary_with_sixth_form,2018-11-26,2025-09-15,complete,,,,caseworker@northbridge.example,
EHC-003317,P0015549,Freya,Lindqvist,2017-08-25,4,Brook Junior School,junior,2022-07-08,2026-11-02,awaiting_decision,,,junior->secondary 2029,alex caseworker,
EHC-001276,P0006093,Tyler,Mensah,2010-01-09,12,Northgate High School,secondary_with_sixth_form,2019-03-29,2026-09-24,amending,2026-10-15,,,caseworker@northbridge.example,
EHC-000812,P0003318,Sophie,Evans,2004-04-11,,Greenfields Specialist College,post16,2018-07-02,2026-05-19,complete,,,,manager@northbridge.example,
EHC-002731,P0011870,Noah,Fairbairn,2015-03-03,7,Ashby Middle School,middle,2022-10-10,2026-10-06,complete,,,middle->secondary 2028,Morgan Manager,
EHC-003055,P0014302,Layla,Said,2013-12-01,8,Elective home education,other,2023-04-04,2026-04-01,complete,,,,Morgan Manager,
"""

HISTORY = ("plan_issued_on", "last_review_on", "amendments_sent_on", "next_meeting_on")


def example_plans(today: date) -> str:
    """The example plans file as written on ``today`` (see the module's docstring)."""
    days = (today - EXAMPLE_DAY).days
    years = academic_year(today) - academic_year(EXAMPLE_DAY)
    rows = list(csv.DictReader(io.StringIO(TEMPLATE, newline="")))
    out = io.StringIO(newline="")
    writer = SafeDictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row["date_of_birth"] = add_months(date.fromisoformat(row["date_of_birth"]),
                                          12 * years).isoformat()
        for column in HISTORY:
            if row[column]:
                row[column] = (date.fromisoformat(row[column])
                               + timedelta(days=days)).isoformat()
        if row["next_transfer"]:
            phases, year = row["next_transfer"].split(" ")
            row["next_transfer"] = f"{phases} {int(year) + years}"
        writer.writerow(row)
    return out.getvalue()
