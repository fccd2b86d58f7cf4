import sys
from pathlib import Path

# The IDX dataset writer the recipe comparison trains on lives beside rf_core's data tests (tests/rf_core/test_data.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rf_core"))
