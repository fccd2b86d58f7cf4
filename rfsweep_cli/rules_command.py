"""`rfsweep rules`: every learning rule, what its update and feedback are, and its locality ledger."""

from __future__ import annotations

import json
from typing import Any

import typer

LEDGER_COLUMNS = {  # short headers, so the table reads at 80 columns; the caption spells them out
    "weight_transport": ("Wᵀ", "the backward pass reads Wᵀ (weight transport)"),
    "feedback_from_weights": ("W→F", "W read to form, refresh or initialise feedback"),
    "closed_form_inverse": ("inv", "a closed-form inverse or solve"),
    "batch_global": ("batch", "an operation across the batch"),
    "output_error_broadcast": ("e→all", "the output error sent to every layer"),
    "sign_transport": ("sgn", "the backward pass reads the sign of W (sign transport)"),
}


def describe_rules(assignments: dict[str, Any]) -> list[dict[str, Any]]:
    """One object per rule: name, summary, update, feedback, ledger and the rule's own fields with defaults;
    `assignments` (FIELD=VALUE) apply to the rules that read them."""
    from rf_core import TrainConfig, available_rules, get_rule, rule_fields

    rows = []
    for name in available_rules():
        mine = {k: v for k, v in assignments.items() if k in rule_fields(name)}
        config = TrainConfig.from_dict({"algorithm": name, **mine})
        resolved = config.resolved()
        rows.append(
            {
                "name": name,
                "summary": get_rule(name).summary,
                **config.describe(),
                "lr": resolved.lr,  # the rule's defaults for the common fields it sets
                "activation": resolved.activation,
                "params": config.resolved().params.to_dict(),
                # the allowed values of each fixed-choice field (sign_symmetry's variants, RF's updates, ...)
                "choices": {field: list(allowed) for field, allowed in get_rule(name).Params.choices.items()},
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
    from rich import box
    from rich.console import Console
    from rich.table import Table

    legend = "; ".join(f"{short}: {meaning}" for short, meaning in LEDGER_COLUMNS.values())
    table = Table(
        title="Learning rules and the non-local information they use (✔ = uses it)",
        caption=legend,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_lines=True,
    )
    table.add_column("rule", style="bold", no_wrap=True)
    table.add_column("update\nfeedback", no_wrap=True)
    for short, _ in LEDGER_COLUMNS.values():
        table.add_column(short, justify="center", no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            row["update"] + "\n" + row["feedback"].replace("+", "\n+ "),
            *("✔" if row["ledger"][key] else "·" for key in LEDGER_COLUMNS),
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("rules")(rules_command)
