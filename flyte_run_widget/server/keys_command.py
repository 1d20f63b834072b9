"""``flyte-run-widget api-key create|list|delete`` and ``flyte-run-widget auth approve|deny|pending``:
the owner's side of ``serve --auth``. They open the service's ``DATA/auth.db`` directly, so they
work whether or not the service runs, and a change counts at its next call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..common.data_dir import default_data_dir
from ..errors import ServeError
from .auth_store import AUTH_DB, AuthStore


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"the service's folder (default {default_data_dir()})"
    )


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="key_command", required=True)
    create = sub.add_parser("create", help="make an API key and print it once (only its hash is kept)")
    create.add_argument("name", help="the key's name, also its client id (letters, digits, . _ -)")
    create.add_argument(
        "--host",
        required=True,
        help="the host clients reach the service at, without scheme or port: the flyte SDK"
        " connects to port 443 of it",
    )
    create.add_argument("--org", default="", help="the org the key names (default none)")
    sub.add_parser("list", help="the keys' names, hosts and ages (never their secrets)")
    delete = sub.add_parser("delete", help="delete a key: it and every token it got stop working at once")
    delete.add_argument("name")
    for p in sub.choices.values():
        _data_dir(p)


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="auth_command", required=True)
    approve = sub.add_parser("approve", help="let a pending device login in (the code the client shows)")
    approve.add_argument("user_code")
    deny = sub.add_parser("deny", help="refuse a pending device login")
    deny.add_argument("user_code")
    sub.add_parser("pending", help="the device logins waiting for approval")
    for p in sub.choices.values():
        _data_dir(p)


def _open(args: argparse.Namespace) -> AuthStore:
    data_dir = Path(args.data_dir or default_data_dir()).expanduser()
    if not data_dir.is_dir():
        raise ServeError(
            f"{data_dir} is not a Run service's data folder; pass the one it serves with --data-dir"
        )
    return AuthStore(data_dir / AUTH_DB)


def run_keys(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        if args.key_command == "create":
            key = store.create_key(args.name, args.host, args.org)
            print(key)
            print(
                f"API key {args.name!r} for {args.host}: shown once, keep it secret. Use it as"
                " flyte.init_from_api_key(key) or FLYTE_API_KEY.",
                file=sys.stderr,
            )
        elif args.key_command == "list":
            now = time.time()
            for info in store.list_keys():
                age = int(now - info.created)
                print(f"{info.name}\thost={info.host}\torg={info.org or '-'}\tcreated {age} s ago")
        elif args.key_command == "delete":
            if not store.delete_key(args.name):
                raise ServeError(f"there is no API key named {args.name!r} (flyte-run-widget api-key list)")
            print(f"deleted API key {args.name!r} and its tokens")
    finally:
        store.close()
    return 0


def run_auth(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        if args.auth_command == "pending":
            for code, left in store.pending_devices():
                print(f"{code}\texpires in {int(left)} s")
        else:
            store.decide_device(args.user_code, approve=args.auth_command == "approve")
            print(f"{args.auth_command.replace('deny', 'denie')}d device login {args.user_code}")
    finally:
        store.close()
    return 0
