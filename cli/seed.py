"""Demo data: a small directory for a fictional council (Northbridge), so that a new system has
services, people and an ADQA group to try advice requests against. ``ehc up`` adds it to an
empty directory; ``ehc seed demo`` does it by hand. Every address is at a ``.example`` domain
(RFC 2606), so nothing can ever be delivered to a real person.

The rows go through the directory's own rules (``services.directory_admin``), the same as the
API and the web forms, in one transaction: all of it or none of it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sqlmodel import select

from store import tables as t
from store.db import session_for

# (name, agency, team email, default, [(name, email, role, lead)])
DEMO_SERVICES: list[tuple[str, str, str | None, bool, list[tuple[str, str, str, bool]]]] = [
    ("Northbridge Primary School", "education", "senco@northbridge-primary.example", True, [
        ("Priya Shah", "p.shah@northbridge-primary.example",
         "Special educational needs co-ordinator (SENCo)", True),
        ("Tom Hughes", "t.hughes@northbridge-primary.example", "Headteacher", False),
    ]),
    ("Riverside Academy", "education", "send@riverside-academy.example", False, [
        ("Grace Okafor", "g.okafor@riverside-academy.example", "SENCo", True),
    ]),
    ("Designated Clinical Officer team", "health", "dco@northbridge-icb.example", True, [
        ("Dr Helen Marsh", "helen.marsh@northbridge-icb.example",
         "Designated Clinical Officer", True),
        ("Sam Patel", "sam.patel@northbridge-icb.example", "SEND health co-ordinator", False),
    ]),
    ("Community Paediatrics", "health", "paediatrics@northbridge-health.example", False, [
        ("Dr Ahmed Karim", "a.karim@northbridge-health.example",
         "Consultant community paediatrician", True),
        ("Lucy Brennan", "l.brennan@northbridge-health.example", "Clinic co-ordinator", False),
    ]),
    ("Speech and Language Therapy", "health", "salt@northbridge-health.example", False, [
        ("Megan Lloyd", "m.lloyd@northbridge-health.example",
         "Lead speech and language therapist", True),
    ]),
    ("Children's Disability Team", "social_care", "cdt@northbridge.example", True, [
        ("Daniel Forde", "daniel.forde@northbridge.example", "Team manager", True),
        ("Aisha Begum", "aisha.begum@northbridge.example", "Social worker", False),
        ("Chris Walsh", "chris.walsh@northbridge.example", "Social worker", False),
    ]),
    ("Children in Need Team", "social_care", "cin@northbridge.example", False, [
        ("Rachel Green", "rachel.green@northbridge.example", "Team manager", True),
    ]),
    ("Educational Psychology Service", "educational_psychology", "eps@northbridge.example",
     True, [
        ("Dr Owen Price", "owen.price@northbridge.example",
         "Principal educational psychologist", True),
        ("Dr Nadia Rossi", "nadia.rossi@northbridge.example", "Educational psychologist",
         False),
    ]),
]

DEMO_ADQA: list[tuple[str, str, str]] = [
    ("Karen Doyle", "karen.doyle@northbridge.example", "Assistant Director, Education"),
    ("Michael Osei", "michael.osei@northbridge.example",
     "Assistant Director, Children's Social Care"),
    ("Fiona Grant", "fiona.grant@northbridge-icb.example",
     "Associate Director, Children's Commissioning (ICB)"),
]


def seed_demo(db_url: str) -> bool:
    """Add the demo directory if the directory has no services. Returns whether it did:
    running it again (or after a council has added its own services) changes nothing."""
    from services import directory_admin as d  # the directory's rules, shared with the API

    services = [
        (d.ServiceIn(name=name, agency=agency, team_email=team_email, is_default=default),
         [d.ContactIn(name=person, email=email, role=role, is_lead=lead)
          for person, email, role, lead in people])
        for name, agency, team_email, default, people in DEMO_SERVICES]
    members = [d.AdqaMemberIn(name=person, email=email, role=role)
               for person, email, role in DEMO_ADQA]
    with session_for(db_url) as session:
        return d.fill_empty_directory(session=session, services=services, members=members)


# Demo staff accounts, one of each role, for a system with no accounts yet.
DEMO_STAFF: list[tuple[str, str, str]] = [
    ("Alex Caseworker", "caseworker@northbridge.example", "caseworker"),
    ("Morgan Manager", "manager@northbridge.example", "manager"),
    ("Sam Administrator", "admin@northbridge.example", "admin"),
]


def seed_demo_staff(db_url: str, password_file: Path) -> list[tuple[str, str, str]]:
    """Demo accounts (one per role) if there are no staff accounts at all, each with its own
    random password, written to ``password_file`` (mode 0600) for the person running the demo.
    Returns the accounts added as (email, role, password); none when any account exists."""
    import secrets

    from services.staff import StaffError, create_user

    with session_for(db_url) as session:
        if session.exec(select(t.StaffUser.id).limit(1)).first() is not None:
            return []
        added = []
        try:
            for name, email, role in DEMO_STAFF:
                password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
                create_user(session, email=email, name=name, role=role, password=password)
                added.append((email, role, password))
        except StaffError:  # another process seeded them at the same moment
            return []
    password_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also a file made before, with other permissions
    with os.fdopen(fd, "w") as f:
        f.write("# Demo staff accounts made by `ehc up` (fictional; change or deactivate them "
                "before real use)\n")
        for email, role, password in added:
            f.write(f"{role:<11} {email:<34} {password}\n")
    return added


def _cmd_seed_demo(args: argparse.Namespace) -> None:
    from config.settings import get_settings

    url = args.url or get_settings().db_url
    if seed_demo(url):
        people = sum(len(s[4]) for s in DEMO_SERVICES)
        print(f"added the demo directory: {len(DEMO_SERVICES)} services, {people} contacts, "
              f"{len(DEMO_ADQA)} ADQA members")
    else:
        print("the directory already has services; nothing added")


def add_commands(sub: argparse._SubParsersAction) -> None:
    seed = sub.add_parser("seed", help="add demo data")
    seed_sub = seed.add_subparsers(dest="seed_command", required=True,
                                   parser_class=sub._parser_class)
    demo = seed_sub.add_parser("demo", help="a small directory for a fictional council, if "
                               "the directory is empty (.example addresses only)")
    demo.add_argument("--url", help="database URL (default: from settings)")
    demo.set_defaults(func=_cmd_seed_demo)
