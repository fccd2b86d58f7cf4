"""The sweep page renders, in a real browser: inside MLflow's UI (a real `mlflow server`, SQLite store, loopback
port) on the parent run's artifact page, and as the raw file with every network name unresolvable.

Debian's Chromium and chromedriver, driven by Selenium. Where they are missing the tests skip saying why, and
under CI=true fail saying why (`tests/browser_helpers.py`; `.ci/run` installs them). Screenshots go to
pytest's tmp folder, and to $RFSWEEP_SCREENSHOT_DIR when set (that is how docs/screenshots/ is made: see
docs/SWEEPS.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_helpers import ink, needs_chromium, offline_chromium, require_browser, save_screenshot
from report_trials import METRIC, digits_like_trials
from sweep_helpers import running_mlflow_server

from sweep_service import mlflow_ui
from sweep_service.report import REPORT_FILE, SweepInfo, analyse, log_report_artifact, write_sweep_report

pytestmark = [pytest.mark.slow, needs_chromium]
RULES = ("bp", "rf_two_phase", "fa")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite store, artifacts served) on a free loopback port."""
    require_browser()  # before the server starts: a browser test that cannot run says so at once
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(scope="module")
def logged_sweep(mlflow_server, tmp_path_factory):
    """A sweep as the runner will log it: experiment in the model-training view, a named parent run with
    the report at its artifact root, a named child run per trial."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("digits-quick")
    mlflow_ui.open_in_model_training_view(client, experiment_id)
    sweep_id = "digits-quick-20261201-105900-a1b2c3"
    parent = client.create_run(
        experiment_id, run_name=mlflow_ui.parent_run_name("digits-quick", sweep_id), tags={"rfsweep.role": "sweep"}
    ).info.run_id
    trials = []
    for t in digits_like_trials():
        run = client.create_run(
            experiment_id,
            run_name=mlflow_ui.trial_run_name(t.rule, t.trial_id, t.status),
            tags={"mlflow.parentRunId": parent, "rfsweep.status": t.status},
        )
        client.set_terminated(run.info.run_id, "FAILED" if t.status in ("diverged", "failed") else "FINISHED")
        trials.append(
            type(t)(
                **{
                    **t.__dict__,
                    "mlflow_run_id": run.info.run_id,
                    "run_name": mlflow_ui.trial_run_name(t.rule, t.trial_id, t.status),
                }
            )
        )
    info = SweepInfo(
        metric=METRIC,
        mode="max",
        name="digits-quick",
        sweep_id=sweep_id,
        rules=RULES,
        experiment_id=experiment_id,
        mlflow_ui_url=mlflow_server,
    )
    path = write_sweep_report(trials, info, tmp_path_factory.mktemp("report"))
    assert log_report_artifact(client, parent, path) == REPORT_FILE
    client.set_terminated(parent, "FINISHED")
    return {
        "client": client,
        "experiment_id": experiment_id,
        "parent": parent,
        "trials": trials,
        "info": info,
        "path": path,
    }


@pytest.fixture
def browser(tmp_path):
    with offline_chromium(tmp_path) as driver:
        yield driver


def _wait(driver, find, what: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: find(d) or None)
    except Exception:
        text = driver.find_element("tag name", "body").text[:800]
        pytest.fail(f"{what} did not appear within {timeout} s; page text: {text!r}")


def _save(driver, tmp_path: Path, name: str) -> Path:
    return save_screenshot(driver, tmp_path, name)


def _close_assistant(driver) -> None:
    """MLflow 3.17 opens an assistant panel over a third of the page; close it for the pictures."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        if button.is_displayed():
            button.click()


_ink = ink


def _assert_report_drawn(driver, trials, info):
    """In the current document: both rules' parallel coordinates, importance bars, curves, the best marked."""
    from selenium.webdriver.common.by import By

    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".parcoords")) >= 2, "two parallel-coordinates charts")
    _wait(
        driver,
        lambda d: d.execute_script("return window.Plotly && document.querySelectorAll('.js-plotly-plot').length"),
        "plotly charts",
    )
    assert len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == 5
    assert len(driver.find_elements(By.CSS_SELECTOR, "g.trace.bars")) == 2  # importance, bp and rf_two_phase
    assert (
        len(driver.find_elements(By.CSS_SELECTOR, ".parcoords .axis-title")) >= 2 * 4
    )  # lr, hidden, activation, metric
    curves = driver.find_elements(By.CSS_SELECTOR, "g.trace.scatter")
    drawable = [t for t in trials if any(v == v for v in t.curve.values())]
    assert len(curves) >= len(drawable), (len(curves), len(drawable))
    text = driver.find_element(By.TAG_NAME, "body").text
    for summary in analyse(trials, info, importance=False).rules.values():
        if summary.best is not None:
            assert f"best {summary.best.trial_id}" in text  # the star's label on the curves
    assert "no usable trial: no trial with a finite val_accuracy (3 diverged)" in text


def test_report_renders_inline_on_the_parent_runs_artifact_page(browser, logged_sweep, mlflow_server, tmp_path):
    from selenium.webdriver.common.by import By

    url = mlflow_ui.artifact_url(mlflow_server, logged_sweep["experiment_id"], logged_sweep["parent"], REPORT_FILE)
    browser.get(url)
    frame = _wait(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "iframe.mlflow-html-iframe"), "MLflow's HTML artifact frame"
    )[0]
    _close_assistant(browser)
    box = frame.rect
    browser.switch_to.frame(frame)
    _assert_report_drawn(browser, logged_sweep["trials"], logged_sweep["info"])
    browser.switch_to.default_content()
    time.sleep(0.5)  # let plotly finish its transitions before the picture
    top = _save(browser, tmp_path, "sweep_report_in_mlflow.png")
    frame_box = (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    assert _ink(top, frame_box) > 0.04, "the report's frame is blank"
    browser.switch_to.frame(frame)
    browser.execute_script("document.querySelector('h2:nth-of-type(3)').scrollIntoView()")  # importance, curves
    browser.switch_to.default_content()
    time.sleep(0.5)
    assert _ink(_save(browser, tmp_path, "sweep_report_in_mlflow_curves.png"), frame_box) > 0.04


def test_raw_report_renders_with_no_network(browser, logged_sweep, tmp_path):
    browser.set_window_size(1400, 2600)
    browser.get(logged_sweep["path"].as_uri())
    _assert_report_drawn(browser, logged_sweep["trials"], logged_sweep["info"])
    time.sleep(0.5)
    assert _ink(_save(browser, tmp_path, "sweep_report_raw.png")) > 0.04


def test_experiment_link_opens_the_model_training_view(browser, logged_sweep, mlflow_server, tmp_path):
    from selenium.webdriver.common.by import By

    experiment = logged_sweep["client"].get_experiment(logged_sweep["experiment_id"])
    assert experiment.tags[mlflow_ui.EXPERIMENT_KIND_TAG] == mlflow_ui.MODEL_TRAINING_KIND
    browser.get(mlflow_ui.experiment_url(mlflow_server, logged_sweep["experiment_id"]))
    _wait(
        browser,
        lambda d: "digits-quick #a1b2c3" in d.find_element(By.TAG_NAME, "body").text,
        "the parent run in the runs table",
    )
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Run Name" in text and "Token Usage" not in text  # the runs table, not the GenAI overview
    _close_assistant(browser)
    time.sleep(0.5)
    _save(browser, tmp_path, "sweep_runs_in_mlflow.png")
