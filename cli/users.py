"""``ehc users``: staff accounts from the command line, for the first administrator of a new
system and for scripted set-up. The rules are the web pages' (``services.staff``).

    ehc users add --email a.patel@council.gov.uk --name "Asha Patel" --role admin
    ehc users list
    ehc users set-password a.patel@council.gov.uk
    ehc users token a.patel@council.gov.uk --name "BI dashboard"   # prints an API token

The password is asked for at the terminal (twice), or read from standard input with
``--password-stdin``; it is never an argument, so it stays out of shell history and ``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy import func
from sqlmodel import select


def _password(args: argparse.Namespace) -> str:
    from cli.usage import UsageError

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("The same password again: ") != first:
        raise UsageError("the two passwords are not the same: try again")
    return first


def _session(args: argparse.Namespace):
    from store.db import session_for
    from config.settings import get_settings

    return session_for(args.url or get_settings().db_url)


def _fail(exc) -> None:
    from cli.usage import UsageError

    raise UsageError(exc.message) from None


def _cmd_add(args: argparse.Namespace) -> None:
    from services.staff import StaffError, create_user

    password = _password(args)
    with _session(args) as s:
        try:
            user = create_user(s, email=args.email, name=args.name, role=args.role,
                               password=password)
        except StaffError as exc:
            _fail(exc)
        print(f"added {user.role} {user.email}")


def _cmd_list(args: argparse.Namespace) -> None:
    from store import tables as t

    with _session(args) as s:
        for u in s.exec(select(t.StaffUser).order_by(t.StaffUser.email)):
            print(f"{u.role:<11} {'active' if u.active else 'inactive':<9} {u.email}  {u.name}")


def _cmd_set_password(args: argparse.Namespace) -> None:
    from cli.usage import UsageError
    from store import tables as t
    from services.staff import StaffError, normal_email, set_password

    with _session(args) as s:
        user = s.exec(select(t.StaffUser).where(
            func.lower(t.StaffUser.email) == normal_email(args.email))).first()
        if user is None:
            raise UsageError(f"there is no account for {args.email}: see `ehc users list`")
        try:
            set_password(s, user, _password(args))
        except StaffError as exc:
            _fail(exc)
        print(f"new password set for {user.email}; their sessions have ended")


def _cmd_token(args: argparse.Namespace) -> None:
    from cli.usage import UsageError
    from store import tables as t
    from services.staff import StaffError, create_token, normal_email

    with _session(args) as s:
        user = s.exec(select(t.StaffUser).where(
            func.lower(t.StaffUser.email) == normal_email(args.email))).first()
        if user is None or not user.active:
            raise UsageError(f"there is no active account for {args.email}: see `ehc users list`")
        try:
            token, _ = create_token(s, user, args.name)
        except StaffError as exc:
            _fail(exc)
    print(token)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from services.staff import ROLES

    users = sub.add_parser("users", help="staff accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True,
                                     parser_class=sub._parser_class)
    add = users_sub.add_parser("add", help="add a staff account")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    lst = users_sub.add_parser("list", help="list the staff accounts")
    pw = users_sub.add_parser("set-password", help="set a new password for an account")
    pw.add_argument("email")
    tok = users_sub.add_parser("token", help="make an API token for an account and print it "
                               "(it acts with the account's role until revoked)")
    tok.add_argument("email")
    tok.add_argument("--name", required=True, help="what will use it, e.g. 'BI dashboard'")
    tok.set_defaults(func=_cmd_token)
    for p in (add, pw):
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input instead of asking")
    for p in (add, lst, pw, tok):
        p.add_argument("--url", help="database URL (default: from settings)")
    add.set_defaults(func=_cmd_add)
    lst.set_defaults(func=_cmd_list)
    pw.set_defaults(func=_cmd_set_password)
