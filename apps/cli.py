"""``mnet``: the suite's command line. Thin: it parses arguments and calls the library.

Each sub-command lives in ``apps/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a handler taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mnet.apps.options import apply_source

#: sub-command modules under ``apps.commands``, in the order ``mnet --help`` lists them
COMMANDS: tuple[str, ...] = ("compare", "weights", "eval", "train", "predict", "export", "faces", "demo")


class UserError(Exception):
    """An error the user can fix (bad argument, missing file): printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnet", description="MobileNet multi-task vision suite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"mnet.apps.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # positionals after options (``train dogs --config F a=b``) come back as extras; a command that
    # takes them names its list with ``set_defaults(extra_dest=...)``
    args, extra = parser.parse_known_args(argv)
    if extra:
        dest = getattr(args, "extra_dest", None)
        if dest is None or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, dest, [*getattr(args, dest), *extra])
    try:
        apply_source(args)
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mnet {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a permission: one line naming the file
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"mnet {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
