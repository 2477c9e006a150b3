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

from . import commands
from .commands import UsageError
from .config import ConfigError, Profile, config_path, load_profile
from .errors import MirrorClientError
from .options import (
    add_remote_options,
    content_type,
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
    leaf(dists, "list", commands.distribution_list, "list distributions")
    leaf(dists, "show", commands.distribution_show, "show a distribution").add_argument("name")
    p = leaf(dists, "update", commands.distribution_update, "update a distribution")
    p.add_argument("name")
    p.add_argument("--base-path", metavar="PATH")
    p.add_argument("--description")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--repository", metavar="REPO")
    target.add_argument("--version", nargs=2, metavar=("REPO", "NUMBER"))
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

    # sync
    p = groups.add_parser("sync", help="sync a repository from a remote", parents=[common])
    p.set_defaults(func=commands.sync)
    p.add_argument("repository")
    p.add_argument("--remote", required=True)
    p.add_argument("--mirror", action="store_true", help="make the version match upstream")
    p.add_argument("--detach", action="store_true", help="print the task and return")
    p.add_argument("--request-id", metavar="UUID", help="idempotency key")

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


def _credentials(profile: Profile) -> grpc.ChannelCredentials | None:
    """TLS credentials verifying the server against the profile's CA, or None (plaintext)."""
    if profile.ca_file is None:
        return None
    try:
        return grpc.ssl_channel_credentials(root_certificates=profile.ca_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"profile {profile.name!r}: cannot read ca_file: {exc}") from None


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
        with MirrorClient(server, credentials=_credentials(profile)) as client:
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
