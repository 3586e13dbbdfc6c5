"""`talkative models`: promote, roll back or retire model versions on TF Serving.

Edit serving/models.config in the steps TF Serving accepts: list a version, wait until
the server reports it AVAILABLE, then move a label onto it. One edit doing both makes TF
Serving refuse the config on every later poll, stalling it on the old versions. Each
step is waited on through the server's gRPC API.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from talkative.rollout import Rollout

LABELS = ("stable", "canary")

EPILOG = (
    "Exit status: 0 done (or nothing to do); 1 the server did not reach the expected state or "
    "cannot be reached (a listing or label move it did not take up is undone); 2 refused: the "
    "request or the config file is wrong, or the edit would stall the server; nothing was "
    'written. See serving/README.md ("Update a model", "Roll back").'
)


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _common(p: argparse.ArgumentParser, *, edits: bool) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=Path("serving/models.config"),
        metavar="FILE",
        help="the text-format ModelServerConfig TF Serving reads with --model_config_file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--server",
        default="127.0.0.1:8500",
        metavar="HOST:PORT",
        help="TF Serving's gRPC API, asked for each version's state and where each label "
        "points (default: %(default)s)",
    )
    if not edits:
        return
    p.add_argument(
        "--repository",
        "--models-dir",
        dest="repository",
        type=Path,
        default=Path("serving/models"),
        metavar="DIR",
        help="local model repository laid out as NAME/VERSION/saved_model.pb; a version "
        "not exported there is refused (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=300.0,
        metavar="S",
        help="give up waiting on the server after S seconds per step, undoing a listing or "
        "label move it did not take up; allow for the server's "
        "--model_config_file_poll_wait_seconds plus loading and warm-up (default: %(default)g)",
    )
    p.add_argument(
        "--poll",
        type=_seconds,
        default=0.5,
        metavar="S",
        help="seconds between two questions to the server while waiting (default: %(default)g)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the steps that would be taken; write nothing, contact no server",
    )


# Each action's one-line help and its description.
ACTIONS = {
    "promote": (
        "serve VERSION and put LABEL on it",
        "Put LABEL on VERSION of model NAME. If VERSION is not listed yet: list "
        "it, wait until the server reports it AVAILABLE (unlist it again if it fails to "
        "load or --timeout passes), then move the label and wait until the server resolves "
        "the label to VERSION. The previous version stays listed for a rollback.",
    ),
    "rollback": (
        "move LABEL back to the previous version",
        "Move LABEL of model NAME back to the largest listed version below the one "
        "it is on, or to --to VERSION. A version no longer listed is listed again and "
        "waited for before the label moves. The version rolled back from stays listed "
        "(retire it later).",
    ),
    "retire": (
        "stop serving a VERSION no label points at",
        "Unlist VERSION of model NAME and wait until the server has unloaded it. "
        "Refused while a label points at it or when it is the only listed version.",
    ),
    "status": (
        "each version's state and where each label points",
        "Print every version of model NAME (listed in the config or known to the "
        "server) with its state on the server, and each label as the config file and the "
        "server see it; a difference means the server has not applied the file (yet).",
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str) -> argparse.ArgumentParser:
        summary, description = ACTIONS[name]
        parser = actions.add_parser(name, help=summary, description=description, epilog=EPILOG)
        parser.set_defaults(func=run)
        return parser

    promote = action("promote")
    promote.add_argument("name", metavar="NAME", help="model name in the config, e.g. char_lstm_en")
    promote.add_argument("version", metavar="VERSION", type=_version, help="version number")
    promote.add_argument(
        "--label",
        required=True,
        choices=LABELS,
        help="canary: the version on trial; stable: the version that takes the traffic",
    )
    _common(promote, edits=True)

    rollback = action("rollback")
    rollback.add_argument("name", metavar="NAME", help="model name in the config")
    rollback.add_argument(
        "--label",
        default="stable",
        choices=LABELS,
        help="the label to move back (default: %(default)s)",
    )
    rollback.add_argument(
        "--to",
        type=_version,
        default=None,
        metavar="VERSION",
        help="the version to go back to (default: the largest listed below the label's)",
    )
    _common(rollback, edits=True)

    retire = action("retire")
    retire.add_argument("name", metavar="NAME", help="model name in the config")
    retire.add_argument("version", metavar="VERSION", type=_version, help="version number")
    _common(retire, edits=True)

    status = action("status")
    status.add_argument("name", metavar="NAME", help="model name in the config")
    _common(status, edits=False)


def _rollout(args: argparse.Namespace) -> Rollout:
    from talkative.rollout import GrpcModelServer, Rollout

    dry_run = getattr(args, "dry_run", False)
    return Rollout(
        config_path=args.config,
        repository=getattr(args, "repository", Path("serving/models")),
        server=None if dry_run else GrpcModelServer(args.server),
        timeout_s=getattr(args, "timeout", 300.0),
        poll_s=getattr(args, "poll", 0.5),
        dry_run=dry_run,
        out=lambda line: print(line, flush=True),
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: `talkative --help` must not pay for protobuf and gRPC.
    from talkative.rollout import RolloutError

    try:
        rollout = _rollout(args)
        if args.action == "promote":
            rollout.promote(args.name, args.version, args.label)
        elif args.action == "rollback":
            rollout.rollback(args.name, args.label, args.to)
        elif args.action == "retire":
            rollout.retire(args.name, args.version)
        else:
            rollout.status(args.name)
    except RolloutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "error: interrupted; check `talkative models status` before retrying", file=sys.stderr
        )
        return 130
    return 0
