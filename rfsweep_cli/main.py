"""The `rfsweep` command line. Each layer registers its own commands; heavy imports happen inside them.

Every mistake on the command line ends in one line on stderr that names the option or field and says why
(`OneLineErrors`), never a traceback; help shows flags as flags (plain click help, not Typer's rich panels,
which print `--json <bool>`).
"""

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from rfsweep_cli import api_commands, bench_commands, core_commands, reproduce_commands, rules_command, sweep_commands
from rfsweep_cli.process_tree import Stopped

# click's UsageError (Typer vendors click; BadParameter, which Typer exports, derives from it)
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing argument, an unknown command or option) as one line:
    `rfsweep CMD: Invalid value for '--epochs': ... (see rfsweep CMD --help)`, exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `rfsweep` alone: the help, as it is
                typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
                sys.exit(exc.exit_code)  # type: ignore[attr-defined]
            ctx: Any = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "rfsweep"
            message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
            typer.echo(f"{command}: {message} (see {command} --help)", err=True)
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except (KeyboardInterrupt, typer.Abort):
            typer.echo("rfsweep: interrupted", err=True)
            sys.exit(130)
        except Stopped as exc:  # `ui`, `serve`, `quickstart`: every process they started has been stopped
            typer.echo(f"rfsweep: stopped by {exc}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help="Sweeps and experiment tracking for biologically plausible learning rules (BP, FA, Reciprocal Feedback).",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)
core_commands.register(app)
sweep_commands.register(app)
api_commands.register(app)
bench_commands.register(app)
reproduce_commands.register(app)
rules_command.register(app)

if __name__ == "__main__":
    app()
