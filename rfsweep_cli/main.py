"""The `rfsweep` command line. Each layer registers its own commands; heavy imports happen inside them."""

import typer

from rfsweep_cli import api_commands, bench_commands, core_commands, reproduce_commands, rules_command, sweep_commands

app = typer.Typer(
    help="Sweeps and experiment tracking for biologically plausible learning rules (BP, FA, Reciprocal Feedback).",
    no_args_is_help=True,
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
