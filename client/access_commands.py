"""Handlers of ``mirrorctl principal``, ``token`` and ``grant`` (the AccessService).

A token's secret is printed once, by ``token create``: the server keeps only its hash.
``--secret-only`` prints just the secret, for ``TOKEN=$(mirrorctl token create ...)``.
"""

from __future__ import annotations

from argparse import Namespace
from datetime import UTC, datetime, timedelta

from protos import mirror_pb2 as pb

from .render import Output, enum_label, format_timestamp, to_dict
from .sync_client import MirrorClient


def _role(value: int) -> str:
    return enum_label(pb.Role.DESCRIPTOR, value) if value else "(grants only)"


def _principal_row(p: pb.Principal) -> list[str]:
    return [p.name, _role(p.role), p.description]


def principal_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``principal create``."""
    out.resource(client.create_principal(args.name, args.role, args.description))
    return 0


def principal_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``principal list``."""
    found: list[pb.Principal] = []
    token = ""
    while True:
        page = client.list_principals(page_token=token)
        found += page.principals
        token = page.next_page_token
        if not token:
            break
    out.resources(iter(found), ["NAME", "ROLE", "DESCRIPTION"], _principal_row)
    return 0


def principal_show(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``principal show``: the principal and its grants."""
    principal = client.get_principal(args.name)
    grants = client.list_grants(args.name)
    if out.json:
        out.document({**to_dict(principal), "grants": [to_dict(g) for g in grants]})
        return 0
    out.resource(principal)
    for grant in grants:
        out.line(f"grant: {_role(grant.role)} on {grant.repository}")
    return 0


def principal_update(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``principal update``."""
    out.resource(client.update_principal(args.name, role=args.role, description=args.description))
    return 0


def principal_delete(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``principal delete``."""
    client.delete_principal(args.name)
    return _done(out, "deleted", f"principals/{args.name.removeprefix('principals/')}")


def token_create(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``token create``: prints the secret, which cannot be shown again."""
    expire = None
    if args.expires_in_days:
        expire = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    created = client.create_token(args.principal, args.description, expire)
    if args.secret_only:
        out.line(created.secret)
    elif out.json:
        out.document({"token": to_dict(created.token), "secret": created.secret})
    else:
        out.line(f"created {created.token.name}")
        out.line("secret (shown only now; the server keeps only its hash):")
        out.line(created.secret)
    return 0


def token_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``token list``."""
    found: list[pb.Token] = []
    page_token = ""
    while True:
        page = client.list_tokens(args.principal, page_token=page_token)
        found += page.tokens
        page_token = page.next_page_token
        if not page_token:
            break

    def row(t: pb.Token) -> list[str]:
        expires = format_timestamp(t.expire_time) if t.HasField("expire_time") else "never"
        return [t.name, format_timestamp(t.create_time), expires, t.description]

    out.resources(iter(found), ["NAME", "CREATED", "EXPIRES", "DESCRIPTION"], row)
    return 0


def token_revoke(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``token revoke NAME``: ``principals/<p>/tokens/<id>``."""
    client.delete_token(args.name)
    return _done(out, "revoked", args.name)


def grant_add(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``grant add PRINCIPAL REPOSITORY --role viewer|editor``."""
    out.resource(client.create_grant(args.principal, args.repository, args.role))
    return 0


def grant_list(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``grant list PRINCIPAL``."""

    def row(g: pb.Grant) -> list[str]:
        return [g.name, g.repository, _role(g.role)]

    out.resources(iter(client.list_grants(args.principal)), ["NAME", "REPOSITORY", "ROLE"], row)
    return 0


def grant_remove(client: MirrorClient, args: Namespace, out: Output) -> int:
    """``grant remove PRINCIPAL REPOSITORY``."""
    client.delete_grant(args.principal, args.repository)
    return _done(out, "removed", f"grant of {args.principal} on {args.repository}")


def _done(out: Output, verb: str, what: str) -> int:
    if out.json:
        out.document({verb: what})
    else:
        out.line(f"{verb} {what}")
    return 0
