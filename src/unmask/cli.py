"""`unmask <verb>`: one thin CLI over the library.

Each verb lives in `unmask.commands.<module>` exposing `HELP`, `add_arguments(parser)` and
`run(args) -> int`. Command modules import only the standard library at top level; torch,
mediapipe and friends are imported inside `run`, so `unmask --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from unmask import __version__

# verb -> module under unmask.commands. Order is the order shown in --help (the pipeline's).
COMMANDS: dict[str, str] = {
    "prepare": "prepare",
    "synth": "synth",
    "spectrum": "spectrum",
    "train": "train",
    "eval": "eval",
    "crossval": "crossval",
    "compose": "compose",
    "bench": "bench",
    "summary": "summary",
    "detect": "detect",
    "explain": "explain",
    "index": "index",
    "similar": "similar",
    "serve": "serve",
    "info": "info",
    "models": "info",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unmask",
        description="Tell real face photos from GAN-generated and edited ones.",
    )
    parser.add_argument("--version", action="version", version=f"unmask {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, module_name in COMMANDS.items():
        module = importlib.import_module(f"unmask.commands.{module_name}")
        p = sub.add_parser(
            verb,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from unmask.errors import UnmaskError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UnmaskError as exc:
        print(f"unmask {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("unmask: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `unmask detect ... | head`
        return 0
    except OSError as exc:  # disk full, read-only folder, ...: the environment, in one line
        import os

        if os.environ.get("UNMASK_DEBUG") or exc.errno is None:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"unmask {args.verb}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
