"""The agencies that owe advice, and which agency each kind of advice is counted under.

An advice item counts under the agency of the service it was asked of; with no service, under
the agency that gives its kind of advice (``AGENCY_FOR_SOURCE``); else "other". The digest,
the statistics (measure c by agency) and the late lists all count by this rule
(``advice_agency`` here; ``store.agency.agency_of`` as SQL). The family's own views
(Reg 6(1)(a)) are not any agency's.
"""

from __future__ import annotations

from domain.case import AdviceSource

AGENCIES = ("education", "health", "social_care", "educational_psychology", "other")

AGENCY_LABELS = {
    "education": "Education",
    "health": "Health",
    "social_care": "Social care",
    "educational_psychology": "Educational psychology",
    "other": "Other",
}

# Which agency's services give each kind of advice; None: no one agency (nobody is chased by
# email unless a service is named).
AGENCY_FOR_SOURCE: dict[AdviceSource, str | None] = {
    AdviceSource.FAMILY: None,
    AdviceSource.EDUCATION: "education",
    AdviceSource.HEALTH: "health",
    AdviceSource.EDUCATIONAL_PSYCHOLOGIST: "educational_psychology",
    AdviceSource.SOCIAL_CARE: "social_care",
    AdviceSource.OTHER: None,  # any agency
    AdviceSource.PREPARING_FOR_ADULTHOOD: None,
    AdviceSource.FAMILY_REQUESTED: None,
}

# The kind of advice each agency's services give (``AGENCY_FOR_SOURCE`` the other way round),
# whose configured ladder chases advice asked of them. An agency that gives no one kind of
# advice ('other') is chased by the default ladder.
SOURCE_FOR_AGENCY: dict[str, AdviceSource] = {
    agency: source for source, agency in AGENCY_FOR_SOURCE.items() if agency is not None}


def advice_agency(source: AdviceSource | str, service_agency: str | None = None) -> str:
    """The agency an advice item counts under (see the module's docstring)."""
    if service_agency:
        return service_agency
    try:
        return AGENCY_FOR_SOURCE.get(AdviceSource(source)) or "other"
    except ValueError:
        return "other"


def agency_label(agency: str) -> str:
    return AGENCY_LABELS.get(agency, agency.replace("_", " ").capitalize())
