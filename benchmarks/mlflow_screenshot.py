"""Screenshots of a sweep in the MLflow UI (docs/mlflow_sweep_runs.png, docs/mlflow_sweep_curves.png).

    mlflow ui --backend-store-uri sqlite:///$RFSWEEP_HOME/mlflow.db --host 127.0.0.1 --port 5077 &
    python benchmarks/mlflow_screenshot.py http://127.0.0.1:5077 PARENT_RUN_ID /tmp/ui

Drives Debian's /usr/bin/chromium (headless) through Playwright (`pip install playwright`; no browser
download needed) because the nested runs only show after a click on the parent's expander. The click
positions fit MLflow 3.17's UI at 1600x1000.
"""

import sys
import time

from playwright.sync_api import sync_playwright

base, parent, out = sys.argv[1], sys.argv[2], sys.argv[3]
with sync_playwright() as p:
    b = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    page = b.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{base}/#/experiments/1/runs?viewMode=table", wait_until="load", timeout=120000)
    time.sleep(8)
    page.mouse.click(1563, 36)  # close the assistant panel
    time.sleep(2)
    page.screenshot(path=f"{out}_a.png")
    box = page.get_by_text("digits-quick-2026", exact=False).first.bounding_box()
    print("run name box", box)
    page.mouse.click(box["x"] - 31, box["y"] + box["height"] / 2)  # the [+] left of the parent's name
    time.sleep(4)
    page.screenshot(path=f"{out}_runs.png")
    page.goto(f"{base}/#/experiments/1/runs/{parent}/artifacts/learning_curves.png", wait_until="load", timeout=120000)
    time.sleep(8)
    page.screenshot(path=f"{out}_plot.png")
    b.close()
