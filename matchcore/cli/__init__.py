"""The `matchcore` command line: argparse subcommands, one module per command.

Each `matchcore/cli/<name>.py` defines `add_parser(subparsers)` and `run(args) -> int`. Modules are
imported lazily by name (only the one being run, or all of them for `--help`), and a command whose
module is absent is simply not listed. Exit codes: see `common`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .._version import __version__
from .common import EXIT_INTERNAL, EXIT_USAGE, PROG, error, guarded

#: Subcommands in the order `--help` lists them.
COMMANDS: tuple[str, ...] = ("match", "generate", "stream", "report", "explain", "bench")


def _import_command(name: str) -> ModuleType | None:
    """The module of command `name`, or None when it does not exist."""
    module_name = f"{__name__}.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def _requested_command(argv: Sequence[str]) -> str | None:
    """The command named in argv (the first word that is not an option), if it is known."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def load_commands(argv: Sequence[str]) -> dict[str, ModuleType]:
    """Import the requested command's module, or every command's when none is named.

    A module that fails to import is an error when it was asked for; otherwise it is left out
    of the listing with a warning, so one broken command never hides the others.
    """
    requested = _requested_command(argv)
    if requested is not None:
        module = _import_command(requested)
        return {requested: module} if module is not None else {}
    modules: dict[str, ModuleType] = {}
    for name in COMMANDS:
        try:
            module = _import_command(name)
        except Exception as exc:
            sys.stderr.write(f"{PROG}: warning: command {name!r} unavailable ({exc})\n")
            continue
        if module is not None:
            modules[name] = module
    return modules


def build_parser(commands: dict[str, ModuleType]) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per loaded command, each accepting --debug."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Match cross-border e-commerce orders, payments and waybills for customs.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands.items():
        module.add_parser(subparsers)
        sub = subparsers.choices.get(name)
        if sub is not None:
            _accept_debug(sub)
    return parser


def _accept_debug(sub: argparse.ArgumentParser) -> None:
    """Let `--debug` also follow the command (SUPPRESS keeps the top-level value otherwise)."""
    try:
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    except argparse.ArgumentError:
        pass  # the command defines its own --debug


def _parse(argv: list[str]) -> tuple[argparse.Namespace, dict[str, ModuleType]] | int:
    """Parsed arguments and loaded commands, or the exit code argparse asked for."""
    commands = load_commands(argv)
    parser = build_parser(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return args, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 internal, 2 usage/input, 3 fail-on,
    4 state log failed)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parsed = _parse(arguments)
    except Exception as exc:  # a command module that fails to import
        error(f"internal error: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL
    if isinstance(parsed, int):
        return parsed
    args, commands = parsed
    return guarded(commands[args.command].run, args)
