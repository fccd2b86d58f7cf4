"""rf_core's rules, model and loop import and train with torch alone (no Ray, MLflow, pydantic, numpy…)."""

import subprocess
import sys
import textwrap


def test_rf_core_trains_with_only_torch_importable():
    script = textwrap.dedent(
        """
        import importlib.metadata as md, re, sys
        # Allow only the standard library, torch and torch's own requirements.
        allowed = {"torch"}
        for req in md.requires("torch") or []:
            if "extra ==" not in req:
                allowed.add(re.split(r"[ ;<>=!\\[~]", req, 1)[0].lower().replace("-", "_"))
        allowed |= {"mpmath", "markupsafe", "nvidia", "cuda", "triton"}
        blocked = {"ray", "mlflow", "pydantic", "numpy", "sklearn", "torchvision", "yaml", "typer", "rich", "pandas"}
        class Block:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0].lower()
                if top in blocked and top not in allowed:
                    raise ModuleNotFoundError(f"blocked in this test: {name}", name=name)
                return None
        sys.meta_path.insert(0, Block())
        from rf_core import TrainConfig, train, available_rules
        for rule in available_rules():
            r = train(TrainConfig(algorithm=rule, dataset="synthetic", epochs=2, train_subset=800))
            assert r.status == "completed", (rule, r.status)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not loaded, loaded
        print("ok", r.test_accuracy)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
