"""The directory of who owes advice as a JSON API: services (schools, health, social care and
educational psychology teams), the named people in them, and the ADQA group.

Each route calls one function of ``services/directory_admin.py``, where the directory's rules
live (the web forms, ``api/directory_pages.py``, go through the same functions); a refusal is
its ``DirectoryProblem``, answered as JSON by ``api/errors.py``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep
from services import directory_admin as d
from services.directory_admin import (
    AdqaMemberIn,
    AdqaMemberOut,
    AdqaMemberUpdate,
    ContactIn,
    ContactOut,
    ContactUpdate,
    ServiceDetail,
    ServiceIn,
    ServiceOut,
    ServiceUpdate,
)

router = APIRouter(prefix="/api/directory", tags=["directory"])


@router.get("/services", response_model=list[ServiceOut],
            summary="List services, by agency, with their lead")
def api_list_services(session: SessionDep, agency: str | None = None,
                      include_inactive: Annotated[bool, Query()] = False) -> list[ServiceOut]:
    return d.list_services(session=session, agency=agency, include_inactive=include_inactive)


@router.post("/services", response_model=ServiceDetail, status_code=201,
             summary="Add a service",
             responses={409: {"description": "a service already has that name"}})
def api_create_service(body: ServiceIn, session: SessionDep) -> ServiceDetail:
    return d.create_service(session=session, body=body)


@router.get("/services/{service_id}", response_model=ServiceDetail,
            summary="A service, with its contacts")
def api_read_service(service_id: str, session: SessionDep) -> ServiceDetail:
    return d.read_service(session=session, service_id=service_id)


@router.patch("/services/{service_id}", response_model=ServiceDetail,
              summary="Change a service, make it its agency's default, or deactivate it")
def api_update_service(service_id: str, body: ServiceUpdate,
                       session: SessionDep) -> ServiceDetail:
    return d.update_service(session=session, service_id=service_id, body=body)


@router.post("/services/{service_id}/contacts", response_model=ContactOut, status_code=201,
             summary="Add a contact to a service")
def api_create_contact(service_id: str, body: ContactIn, session: SessionDep) -> ContactOut:
    return d.create_contact(session=session, service_id=service_id, body=body)


@router.patch("/contacts/{contact_id}", response_model=ContactOut,
              summary="Change a contact, make them the service lead, or deactivate them")
def api_update_contact(contact_id: str, body: ContactUpdate, session: SessionDep) -> ContactOut:
    return d.update_contact(session=session, contact_id=contact_id, body=body)


@router.get("/adqa-members", response_model=list[AdqaMemberOut],
            summary="List the members of the ADQA group")
def api_list_members(session: SessionDep,
                     include_inactive: Annotated[bool, Query()] = False) -> list[AdqaMemberOut]:
    return d.list_members(session=session, include_inactive=include_inactive)


@router.post("/adqa-members", response_model=AdqaMemberOut, status_code=201,
             summary="Add a member to the ADQA group",
             responses={409: {"description": "the address is already in the group"}})
def api_create_member(body: AdqaMemberIn, session: SessionDep) -> AdqaMemberOut:
    return d.create_member(session=session, body=body)


@router.patch("/adqa-members/{member_id}", response_model=AdqaMemberOut,
              summary="Change an ADQA member, or deactivate them")
def api_update_member(member_id: str, body: AdqaMemberUpdate,
                      session: SessionDep) -> AdqaMemberOut:
    return d.update_member(session=session, member_id=member_id, body=body)
