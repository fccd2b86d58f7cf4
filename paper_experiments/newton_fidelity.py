"""Per-layer Newton fidelity of each RF update form (docs/RF_CORE.md): how far one layer's step alone moves the
output, ‖Δz‖/‖e‖ and cos(Δz, −e), averaged over 64 digits training samples one at a time; untrained
64-400-200-100-50-10 network, float64, exact feedback W⁺ (pseudobackprop). §4's Newton step gives 1 and 1.

    python -m paper_experiments.newton_fidelity [--json]
"""

from __future__ import annotations

import argparse
import json

import torch


def measure(samples: int = 64, seed: int = 0) -> dict[str, dict[int, tuple[float, float]]]:
    from rf_core import TrainConfig, get_rule
    from rf_core.data import load_dataset
    from rf_core.metrics import newton_fidelity
    from rf_core.model import MLP

    data = load_dataset("digits", None, val_fraction=0.1, seed=seed)
    x, y = data.x_train[:samples].double(), data.y_train[:samples]
    out = {}
    for update in ("paper", "paper_as_printed", "gated_joint"):
        config = TrainConfig.from_dict(
            {"algorithm": "pseudobackprop", "dataset": "digits", "hidden": [400, 200, 100, 50], "update": update}
        ).resolved()
        generator = torch.Generator().manual_seed(seed)
        net = MLP.from_config(config, 64, 10, generator).double()
        rule = get_rule("pseudobackprop")(net, config.params, generator)
        fidelity = newton_fidelity(rule, x, y)
        out[update] = {
            l: (round(fidelity[f"layer{l}_newton_ratio"], 3), round(fidelity[f"layer{l}_newton_cos"], 3))
            for l in range(1, net.num_layers + 1)
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure()
    if args.json:
        print(json.dumps(result))
        return
    print("| update | " + " | ".join(f"layer {l}: ‖Δz‖/‖e‖, cos" for l in result["paper"]) + " |")
    print("|---|" + "---|" * len(result["paper"]))
    for update, layers in result.items():
        print(f"| {update} | " + " | ".join(f"{r:g}, {c:g}" for r, c in layers.values()) + " |")


if __name__ == "__main__":
    main()
