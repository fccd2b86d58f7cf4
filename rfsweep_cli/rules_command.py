"""`rfsweep rules`: every learning rule, what its update and feedback are, and its locality ledger."""

from __future__ import annotations

import json
from typing import Any

import typer

LEDGER_COLUMNS = {
    "weight_transport": "reads Wᵀ",
    "feedback_from_weights": "feedback from W",
    "closed_form_inverse": "closed-form inverse",
    "batch_global": "batch-global",
    "output_error_broadcast": "output error to every layer",
}


def describe_rules(assignments: dict[str, Any]) -> list[dict[str, Any]]:
    """One object per rule: name, summary, update, feedback, ledger and the rule's own fields with defaults;
    `assignments` (FIELD=VALUE) apply to the rules that read them."""
    from rf_core import TrainConfig, available_rules, get_rule, rule_fields

    rows = []
    for name in available_rules():
        mine = {k: v for k, v in assignments.items() if k in rule_fields(name)}
        config = TrainConfig.from_dict({"algorithm": name, **mine})
        rows.append(
            {
                "name": name,
                "summary": get_rule(name).summary,
                **config.describe(),
                "params": config.resolved().params.to_dict(),
                "set": mine,
            }
        )
    return rows


def rules_command(
    set_: list[str] = typer.Option(
        [], "--set", help="FIELD=VALUE for the rules that read it, e.g. feedback=oracle_cholesky"
    ),
    as_json: bool = typer.Option(False, "--json", help="a JSON list of objects instead of a table"),
) -> None:
    """The learning rules, their update and feedback, and which non-local information each uses."""
    from rf_core import ConfigError
    from rfsweep_cli.core_commands import _parse_assignment

    try:
        rows = describe_rules(dict(_parse_assignment(s) for s in set_))
    except ConfigError as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Learning rules and the non-local information they use (✔ = uses it)", show_lines=True)
    table.add_column("rule", style="bold")
    table.add_column("update")
    table.add_column("feedback")
    for header in LEDGER_COLUMNS.values():
        table.add_column(header, justify="center")
    for row in rows:
        table.add_row(
            row["name"],
            row["update"],
            row["feedback"].replace("+", " + "),
            *("✔" if row["ledger"][key] else "·" for key in LEDGER_COLUMNS),
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("rules")(rules_command)
