"""``mirrorctl``: the command-line client of the mirror service.

Argument parsing lives here; the command handlers are in :mod:`client.commands`, output in
:mod:`client.render`, live sync progress in :mod:`client.progress` and the configuration
file's profiles in :mod:`client.config`. ``mirrorctl completion bash|zsh`` prints a shell
completion script generated from this parser (``shtab``). Exit status: 0 on success, 1 for
a failed call or task, 2 for a usage or configuration error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import shtab

from . import access_commands, commands
from .auth import channel_credentials, resolve_token
from .commands import UsageError
from .config import ConfigError, Profile, config_path, load_profile
from .errors import MirrorClientError
from .options import (
    add_remote_options,
    content_type,
    duration,
    remote_fields,
    version_number,
    version_ref,
)
from .render import Output
from .sync_client import MirrorClient
from .transport import DEFAULT_TARGET

__all__ = ["build_parser", "main", "remote_fields"]

_TASK_STATES = ("queued", "running", "completed", "failed", "canceled")


# -- parser -------------------------------------------------------------------------------


def _common_options(*, top: bool) -> argparse.ArgumentParser:
    """Global options, also accepted after the command (``mirrorctl repo list -o json``).

    Only the top-level copy has defaults; the per-command copies default to SUPPRESS so
    that they never overwrite a value given before the command. ``--server`` defaults to
    None: :func:`connection` then consults MIRROR_SERVER, the profile and the default.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=None if top else argparse.SUPPRESS,
        help="host:port of the server (env MIRROR_SERVER; else the profile's server; "
        f"default {DEFAULT_TARGET})",
    )
    common.add_argument(
        "--profile",
        default=None if top else argparse.SUPPRESS,
        help=f"profile of the configuration file (env MIRROR_PROFILE; file {_config_hint()})",
    )
    common.add_argument(
        "--token",
        default=None if top else argparse.SUPPRESS,
        help="API token (else env MIRROR_TOKEN, MIRROR_TOKEN_FILE, ./.mirror-data/admin-token)",
    )
    common.add_argument(
        "--ca-file",
        default=os.environ.get("MIRROR_CA_FILE") if top else argparse.SUPPRESS,
        metavar="PEM",
        help="use TLS, trusting this CA bundle (env MIRROR_CA_FILE)",
    )
    common.add_argument(
        "--client-cert",
        default=os.environ.get("MIRROR_CLIENT_CERT") if top else argparse.SUPPRESS,
        metavar="PEM",
        help="client certificate for mTLS (env MIRROR_CLIENT_CERT)",
    )
    common.add_argument(
        "--client-key",
        default=os.environ.get("MIRROR_CLIENT_KEY") if top else argparse.SUPPRESS,
        metavar="PEM",
        help="private key of --client-cert (env MIRROR_CLIENT_KEY)",
    )
    common.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="output format (default table)",
    )
    return common


def _config_hint() -> str:
    """The configuration file's path as help text shows it (``~`` for the home directory)."""
    path = str(config_path())
    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def build_parser() -> argparse.ArgumentParser:
    """Return the ``mirrorctl`` argument parser; each command sets ``func``."""
    common = _common_options(top=False)
    parser = argparse.ArgumentParser(
        prog="mirrorctl",
        description="Manage a container image mirror: repositories, remotes, syncs and more.",
        parents=[_common_options(top=True)],
    )
    groups = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def group(name: str, help_text: str, aliases: Sequence[str] = ()) -> Any:
        sub = groups.add_parser(name, help=help_text, aliases=list(aliases))
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    def leaf(subs: Any, name: str, func: Callable[..., int], help_text: str) -> Any:
        sub = subs.add_parser(name, help=help_text, parents=[common])
        sub.set_defaults(func=func)
        return sub

    # repository
    repos = group("repository", "repositories of versioned content", ["repo"])
    p = leaf(repos, "create", commands.repository_create, "create a repository")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.add_argument("--retain-versions", type=int, default=0, metavar="N", help="0 keeps all")
    leaf(repos, "list", commands.repository_list, "list repositories")
    leaf(repos, "show", commands.repository_show, "show a repository").add_argument("name")
    p = leaf(repos, "update", commands.repository_update, "update a repository")
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--retain-versions", type=int, metavar="N")
    p.add_argument(
        "--mirror",
        choices=("true", "false"),
        help="false turns a mirror into a push repository (pushes and content operations "
        "are then accepted); true freezes it as a mirror",
    )
    leaf(repos, "delete", commands.repository_delete, "delete a repository").add_argument("name")

    # remote
    remotes = group("remote", "upstream registries to sync from")
    p = leaf(remotes, "create", commands.remote_create, "create a remote")
    p.add_argument("name")
    add_remote_options(p, create=True)
    leaf(remotes, "list", commands.remote_list, "list remotes")
    leaf(remotes, "show", commands.remote_show, "show a remote").add_argument("name")
    p = leaf(remotes, "update", commands.remote_update, "update the given remote fields")
    p.add_argument("name")
    add_remote_options(p, create=False)
    leaf(remotes, "delete", commands.remote_delete, "delete a remote").add_argument("name")

    # version
    versions = group("version", "immutable versions of a repository")
    leaf(versions, "list", commands.version_list, "list versions").add_argument("repository")
    p = leaf(versions, "show", commands.version_show, "show a version and its content summary")
    p.add_argument("repository")
    p.add_argument("number", type=version_ref, metavar="NUMBER|latest")
    p = leaf(versions, "delete", commands.version_delete, "delete a version (not the latest)")
    p.add_argument("repository")
    p.add_argument("number", type=version_number, metavar="NUMBER")
    p = leaf(versions, "rollback", commands.version_rollback, "new latest version = an older one")
    p.add_argument("repository")
    p.add_argument("number", type=version_number, metavar="NUMBER")

    # content
    content = group("content", "blobs, manifests, tags and signatures of versions")
    p = leaf(content, "list", commands.content_list, "list the content of a version")
    p.add_argument("repository")
    p.add_argument("--version", type=version_ref, default="latest", metavar="N|latest")
    p.add_argument("--type", type=content_type, metavar="TYPE", help="e.g. tag")
    p.add_argument("--membership", choices=("present", "added", "removed"), default="present")
    p = leaf(content, "diff", commands.content_diff, "what changed between two versions")
    p.add_argument("repository")
    p.add_argument("base", type=version_ref, metavar="BASE")
    p.add_argument("target", type=version_ref, metavar="TARGET")
    p.add_argument("--type", type=content_type, metavar="TYPE")
    p = leaf(content, "copy", commands.content_copy, "copy tags with their images into a repo")
    p.add_argument("source", metavar="SOURCE", help="repository (latest) or REPO/versions/N")
    p.add_argument("destination", metavar="DEST", help="repository to copy into")
    p.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="name or wildcard; repeat"
    )
    p = leaf(content, "tag", commands.content_tag, "point a tag at a manifest")
    p.add_argument("repository")
    p.add_argument("tag")
    p.add_argument("digest")
    p.add_argument("--base", type=version_number, metavar="N", help="default: latest")
    p = leaf(content, "untag", commands.content_untag, "remove a tag (the manifest stays)")
    p.add_argument("repository")
    p.add_argument("tag")
    p.add_argument("--base", type=version_number, metavar="N", help="default: latest")
    p = leaf(content, "modify", commands.content_modify, "add and remove content, one version")
    p.add_argument("repository")
    p.add_argument("--add", action="append", default=[], metavar="REF", help="tag or digest")
    p.add_argument("--from", dest="source", metavar="SOURCE", help="where --add looks")
    p.add_argument(
        "--remove", action="append", default=[], metavar="REF", help="tag or digest; repeat"
    )
    p.add_argument("--base", type=version_number, metavar="N", help="default: latest")

    # distribution
    dists = group("distribution", "publish repositories over the registry API", ["dist"])
    p = leaf(dists, "create", commands.distribution_create, "create a distribution")
    p.add_argument("name")
    p.add_argument("--base-path", required=True, metavar="PATH")
    p.add_argument("--description", default="")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--repository", metavar="REPO", help="serve its latest version")
    target.add_argument("--version", nargs=2, metavar=("REPO", "NUMBER"), help="pin a version")
    p.add_argument("--public", action="store_true", help="anyone may pull, without credentials")
    leaf(dists, "list", commands.distribution_list, "list distributions")
    leaf(dists, "show", commands.distribution_show, "show a distribution").add_argument("name")
    p = leaf(dists, "update", commands.distribution_update, "update a distribution")
    p.add_argument("name")
    p.add_argument("--base-path", metavar="PATH")
    p.add_argument("--description")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--repository", metavar="REPO")
    target.add_argument("--version", nargs=2, metavar=("REPO", "NUMBER"))
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--public", dest="public", action="store_true", default=None)
    visibility.add_argument(
        "--private", dest="public", action="store_false", help="pull needs a token (default)"
    )
    p = leaf(dists, "delete", commands.distribution_delete, "delete a distribution")
    p.add_argument("name")

    # task
    tasks = group("task", "long-running work such as syncs")
    p = leaf(tasks, "list", commands.task_list, "list tasks, newest first")
    p.add_argument("--state", choices=_TASK_STATES)
    p.add_argument("--repository", metavar="REPO", help="only tasks that write this repository")
    leaf(tasks, "show", commands.task_show, "show a task").add_argument("id")
    leaf(tasks, "cancel", commands.task_cancel, "cancel a task").add_argument("id")
    leaf(tasks, "watch", commands.task_watch, "follow a task until it ends").add_argument("id")

    # principals, tokens, grants
    roles = ("viewer", "editor", "admin", "none")
    principals = group("principal", "users and service accounts that call the API")
    p = leaf(principals, "create", access_commands.principal_create, "create a principal")
    p.add_argument("name")
    p.add_argument("--role", choices=roles, default="none", help="global role (default none)")
    p.add_argument("--description", default="")
    leaf(principals, "list", access_commands.principal_list, "list principals")
    p = leaf(principals, "show", access_commands.principal_show, "show a principal and grants")
    p.add_argument("name")
    p = leaf(principals, "update", access_commands.principal_update, "change role/description")
    p.add_argument("name")
    p.add_argument("--role", choices=roles)
    p.add_argument("--description")
    p = leaf(principals, "delete", access_commands.principal_delete, "delete a principal")
    p.add_argument("name")
    tokens = group("token", "API tokens of principals (secrets shown once)")
    p = leaf(tokens, "create", access_commands.token_create, "create a token, print its secret")
    p.add_argument("principal")
    p.add_argument("--description", default="")
    p.add_argument("--expires-in-days", type=int, default=0, metavar="N", help="0: never")
    p.add_argument("--secret-only", action="store_true", help="print only the secret")
    leaf(tokens, "list", access_commands.token_list, "list a principal's tokens").add_argument(
        "principal"
    )
    p = leaf(tokens, "revoke", access_commands.token_revoke, "revoke a token at once")
    p.add_argument("name", metavar="principals/P/tokens/ID")
    grants = group("grant", "roles of principals on single repositories")
    p = leaf(grants, "add", access_commands.grant_add, "grant a role on a repository")
    p.add_argument("principal")
    p.add_argument("repository")
    p.add_argument("--role", choices=("viewer", "editor"), required=True)
    leaf(grants, "list", access_commands.grant_list, "list a principal's grants").add_argument(
        "principal"
    )
    p = leaf(grants, "remove", access_commands.grant_remove, "remove a grant")
    p.add_argument("principal")
    p.add_argument("repository")

    # sync
    p = groups.add_parser("sync", help="sync a repository from a remote", parents=[common])
    p.set_defaults(func=commands.sync)
    p.add_argument("repository")
    p.add_argument("--remote", required=True)
    p.add_argument("--mirror", action="store_true", help="make the version match upstream")
    p.add_argument("--detach", action="store_true", help="print the task and return")
    p.add_argument("--request-id", metavar="UUID", help="idempotency key")

    # housekeeping
    p = groups.add_parser(
        "gc",
        help="garbage collection: delete content no version holds, old finished tasks",
        parents=[common],
    )
    p.set_defaults(func=commands.gc)
    p.add_argument(
        "--protection-time",
        type=duration,
        metavar="DURATION",
        help="keep unreferenced content used within this (e.g. 0, 90m; default: the server's)",
    )
    p.add_argument(
        "--task-retention",
        type=duration,
        metavar="DURATION",
        help="delete finished tasks older than this (e.g. 7d; default: the server's)",
    )
    p.add_argument("--detach", action="store_true", help="print the task and return")
    p = groups.add_parser(
        "repair",
        help="re-hash a version's blobs, fetch missing or corrupt ones again",
        parents=[common],
    )
    p.set_defaults(func=commands.repair)
    p.add_argument("repository")
    p.add_argument("number", type=version_ref, metavar="NUMBER|latest", nargs="?", default="latest")
    p.add_argument("--detach", action="store_true", help="print the task and return")

    # completion (needs no server)
    p = groups.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script. bash: "
        "mirrorctl completion bash > ~/.local/share/bash-completion/completions/mirrorctl ; "
        'zsh: mirrorctl completion zsh > "${fpath[1]}/_mirrorctl"',
    )
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=None, completion=True)
    return parser


def connection(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[str, Profile]:
    """The server to call and the profile in force: flag > variable > profile > default."""
    env = os.environ if env is None else env
    profile = load_profile(args.profile, env)
    server = args.server or env.get("MIRROR_SERVER") or profile.server or DEFAULT_TARGET
    return server, profile


def _credentials(args: argparse.Namespace, profile: Profile) -> grpc.ChannelCredentials | None:
    """TLS credentials verifying the server against `--ca-file` (or the profile's CA), with a
    client certificate for mTLS when given; None (plaintext) without any."""
    ca_file = args.ca_file or profile.ca_file
    try:
        return channel_credentials(ca_file, args.client_cert, args.client_key)
    except OSError as exc:
        raise ConfigError(f"cannot read the CA or client certificate files: {exc}") from None


# -- entry point --------------------------------------------------------------------------


def _connection_message(server: str, err: MirrorClientError) -> str:
    """Return the one-line message for an unreachable server."""
    detail = "connection refused" if "refused" in err.message.lower() else err.message
    return f"cannot reach the mirror server at {server} ({' '.join(detail.split())})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mirrorctl`` and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "completion", False):
        print(shtab.complete(parser, shell=args.shell), end="")
        return 0
    out = Output(args.output)
    server = args.server or DEFAULT_TARGET
    try:
        server, profile = connection(args)
        token = resolve_token(args.token, profile_token=profile.token)
        credentials = _credentials(args, profile)
        with MirrorClient(server, token=token, credentials=credentials) as client:
            return args.func(client, args, out)
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except MirrorClientError as err:
        message = _connection_message(server, err) if err.is_connection_error else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 1
    except (UsageError, ValueError) as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``| head``): silence the final flush of stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
