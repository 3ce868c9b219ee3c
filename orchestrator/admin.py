"""`videoedit-admin`: API keys and tenant settings, written straight into the job store.

It opens the store exactly as the orchestrator does (Settings.from_env: VIDEOEDIT_JOB_DB, else the
SQLite file in UR_EDIT_OUTPUT_DIR), so run it with the orchestrators' environment. What it writes
takes effect at once on every orchestrator sharing the store: keys are read on every call.

    videoedit-admin keys create --tenant acme [--role user|admin]   # prints the key, once
    videoedit-admin keys revoke (--tenant acme | --key-id ID)
    videoedit-admin keys list [--tenant acme]
    videoedit-admin quota set --tenant acme [--max-queued N] [--max-running N] [--max-video-seconds S]
    videoedit-admin tenant set --tenant acme --input-root PATH [--input-root PATH ...]
    videoedit-admin tenants list
    videoedit-admin webhook-secret --tenant acme   # for its receiver: its callbacks' signing key

A bad argument, a store that cannot be used or a bad environment exits with status 2 and one
line saying why.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from videoedit.v1.auth import api_key_hash, new_api_key

from .config import Settings, is_within
from .errors import InvalidArgument, VideoEditError
from .jobs.store import JobStore, JobStoreError, open_store
from .jobs.tenants import ROLES, ApiKey, TenantSettings, check_tenant
from .jobs.webhooks import TenantSecrets

NO_LIMIT = "none"  # a quota's value that removes the limit
_UNSET = object()  # a quota option not given: the stored value stays


class AdminError(Exception):
    """A command that cannot be done as asked: its message says why (exit status 2)."""


def _count(name: str, minimum: float, kind: Callable[[str], float]) -> Callable[[str], float | None]:
    """An argparse type: a number of at least `minimum`, or NO_LIMIT (None)."""

    def parse(text: str) -> float | None:
        if text.lower() == NO_LIMIT:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not a number (or '{NO_LIMIT}')") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} {text!r} must be at least {minimum:g} (or '{NO_LIMIT}')")
        return value

    return parse


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


# --- keys ---


def issue_key(store: JobStore, tenant: str, role: str = "user") -> tuple[str, ApiKey]:
    """A new key of `tenant` with `role`, stored (its hash only): the key, to be shown once, and
    what the store lists of it."""
    if role not in ROLES:
        raise InvalidArgument("role", f"{role!r} must be one of {', '.join(ROLES)}")
    key, key_id = new_api_key()
    stored = ApiKey(key_id, check_tenant(tenant), role, time.time())
    store.add_key(stored, api_key_hash(key))
    return key, stored


def create_key(store: JobStore, args: argparse.Namespace, _settings: Settings) -> None:
    key, stored = issue_key(store, args.tenant, args.role)
    print(
        f"made {stored.role} key {stored.key_id} for tenant {stored.tenant}; it is shown only this once:",
        file=sys.stderr,
    )
    print(key)


def revoke_keys(store: JobStore, args: argparse.Namespace, _settings: Settings) -> None:
    revoked = store.revoke_keys(key_id=args.key_id, tenant=args.tenant)
    print(f"revoked {revoked} key{'' if revoked == 1 else 's'}")


def list_keys(store: JobStore, args: argparse.Namespace, _settings: Settings) -> None:
    rows = [(k.key_id, k.tenant, k.role, _when(k.created_at), _when(k.revoked_at)) for k in store.keys(args.tenant)]
    print(_table(("KEY ID", "TENANT", "ROLE", "CREATED", "REVOKED"), rows))


# --- tenants ---


def _tenant(store: JobStore, name: str) -> TenantSettings:
    return store.tenant_settings(check_tenant(name)) or TenantSettings(name)


def set_quota(store: JobStore, args: argparse.Namespace, _settings: Settings) -> None:
    given = {
        field: getattr(args, field)
        for field in ("max_queued", "max_running", "max_video_seconds")
        if getattr(args, field) is not _UNSET
    }
    if not given:
        raise AdminError("quota set: give --max-queued, --max-running or --max-video-seconds")
    updated = dataclasses.replace(_tenant(store, args.tenant), **given)
    store.set_tenant_settings(updated)
    print(_tenants_table([updated]))


def set_tenant(store: JobStore, args: argparse.Namespace, settings: Settings) -> None:
    roots = []
    for given in args.input_root:
        root = Path(given).expanduser().resolve()
        if not root.is_dir():
            raise AdminError(f"--input-root {given}: {root} is not a directory")
        if not any(is_within(root, allowed) for allowed in settings.input_roots):
            allowed = ", ".join(map(str, settings.input_roots))
            raise AdminError(
                f"--input-root {given}: {root} lies outside the input roots (VIDEOEDIT_INPUT_ROOTS: {allowed})"
            )
        roots.append(root)
    updated = dataclasses.replace(_tenant(store, args.tenant), input_roots=tuple(roots))
    store.set_tenant_settings(updated)
    print(_tenants_table([updated]))


def print_webhook_secret(_store: JobStore, args: argparse.Namespace, settings: Settings) -> None:
    secret = TenantSecrets.from_settings(settings).secret_for(check_tenant(args.tenant))
    if secret is None:
        raise AdminError("VIDEOEDIT_WEBHOOK_SECRET is not set: tenants' webhook keys are derived from it")
    print(secret.decode())


def list_tenants(store: JobStore, _args: argparse.Namespace, _settings: Settings) -> None:
    print(_tenants_table(store.all_tenant_settings()))


def _tenants_table(tenants: Sequence[TenantSettings]) -> str:
    def limit(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    rows = [
        (
            t.tenant,
            limit(t.max_queued),
            limit(t.max_running),
            limit(t.max_video_seconds),
            ",".join(map(str, t.input_roots)) or "-",
        )
        for t in tenants
    ]
    return _table(("TENANT", "MAX QUEUED", "MAX RUNNING", "MAX VIDEO S", "INPUT ROOTS"), rows)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="videoedit-admin",
        description="API keys and tenant settings in the orchestrators' job store (from their environment).",
    )
    groups = top.add_subparsers(dest="group", required=True)

    keys = groups.add_parser("keys", help="API keys").add_subparsers(dest="command", required=True)
    create = keys.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", choices=ROLES, default="user", help="admin: sees and runs every tenant's jobs")
    create.set_defaults(run=create_key)
    revoke = keys.add_parser("revoke", help="revoke one key, or every key of a tenant")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant")
    which.add_argument("--key-id")
    revoke.set_defaults(run=revoke_keys)
    listing = keys.add_parser("list", help="every key (ids only, never the secret)")
    listing.add_argument("--tenant")
    listing.set_defaults(run=list_keys)

    quota = groups.add_parser("quota", help="a tenant's limits").add_subparsers(dest="command", required=True)
    quota_set = quota.add_parser("set", help=f"set limits (others kept; '{NO_LIMIT}' removes one)")
    quota_set.add_argument("--tenant", required=True)
    quota_set.add_argument("--max-queued", type=_count("--max-queued", 0, int), default=_UNSET)
    quota_set.add_argument("--max-running", type=_count("--max-running", 0, int), default=_UNSET)
    quota_set.add_argument("--max-video-seconds", type=_count("--max-video-seconds", 0, float), default=_UNSET)
    quota_set.set_defaults(run=set_quota)

    tenant = groups.add_parser("tenant", help="a tenant's settings").add_subparsers(dest="command", required=True)
    tenant_set = tenant.add_parser("set", help="the input roots it may read besides its uploads (replaced)")
    tenant_set.add_argument("--tenant", required=True)
    tenant_set.add_argument("--input-root", action="append", required=True, help="repeat for several")
    tenant_set.set_defaults(run=set_tenant)

    webhook = groups.add_parser("webhook-secret", help="the key a tenant's webhooks are signed with")
    webhook.add_argument("--tenant", required=True)
    webhook.set_defaults(run=print_webhook_secret)

    tenants = groups.add_parser("tenants", help="every tenant's settings").add_subparsers(dest="command", required=True)
    tenants.add_parser("list", help="limits and input roots").set_defaults(run=list_tenants)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    try:
        settings = Settings.from_env()
        store = open_store(settings)
        # Which store: a key made in another one than the orchestrators' would never work.
        print(f"job store: {store.description}", file=sys.stderr)
        try:
            args.run(store, args, settings)
        finally:
            store.close()
    except (AdminError, InvalidArgument, VideoEditError, JobStoreError, ValueError) as err:
        top.exit(2, f"videoedit-admin: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
