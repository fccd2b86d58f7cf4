"""Screenshots of a real sweep in the MLflow UI: the runs table in the sweep's saved view, and its sweep page
(`sweep_report.html`) on the parent run: parallel coordinates, importance, curves, the best trial marked.

    RFSWEEP_HOME=/tmp/shots rfsweep sweep examples/digits_search.yaml --json > /tmp/shots.json
    mlflow server --backend-store-uri sqlite:////tmp/shots/mlflow.db --host 127.0.0.1 --port 5078 &
    python benchmarks/sweep_screenshots.py http://127.0.0.1:5078 /tmp/shots.json docs/screenshots

Debian's headless Chromium through Selenium, with no network (tests/browser_helpers.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_helpers import offline_chromium
from selenium.webdriver.common.by import By

from sweep_service import mlflow_ui
from sweep_service.report import REPORT_FILE


def close_assistant(driver) -> None:  # MLflow 3.17 opens an assistant panel over a third of the page
    for button in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        if button.is_displayed():
            button.click()


def main(base: str, result_json: str, out: str) -> None:
    result = json.loads(Path(result_json).read_text().strip().splitlines()[-1])
    experiment, parent = result["mlflow"]["experiment_id"], result["mlflow"]["parent_run_id"]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile, offline_chromium(Path(profile), size="1600,1000") as driver:
        driver.get(mlflow_ui.experiment_url(base, experiment, view=mlflow_ui.sweep_view_key(result["sweep_id"])))
        time.sleep(10)
        close_assistant(driver)
        time.sleep(2)
        driver.save_screenshot(str(folder / "digits_sweep_runs.png"))
        driver.set_window_size(1600, 1300)
        driver.get(mlflow_ui.artifact_url(base, experiment, parent, REPORT_FILE))
        time.sleep(10)
        close_assistant(driver)
        time.sleep(2)
        driver.save_screenshot(str(folder / "digits_sweep_report.png"))
        frame = driver.find_elements(By.CSS_SELECTOR, "iframe.mlflow-html-iframe")[0]
        driver.switch_to.frame(frame)
        driver.execute_script("document.querySelector('h2:nth-of-type(3)').scrollIntoView()")
        driver.switch_to.default_content()
        time.sleep(1.5)
        driver.save_screenshot(str(folder / "digits_sweep_report_curves.png"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
