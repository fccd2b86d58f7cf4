"""Helpers for the sweep tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def runs_of(client, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=1000)


def children_and_parent(client, experiment_id: str):
    runs = runs_of(client, experiment_id)
    parents = [r for r in runs if r.data.tags.get("rfsweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("rfsweep.role") == "trial"]
    return parents, children


def steps_of(client, run_id: str, key: str) -> list[int]:
    return sorted(int(m.step) for m in client.get_metric_history(run_id, key))
