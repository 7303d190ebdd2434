"""The model page and /docs in a real headless Chromium against a real `tabserve serve`.

A person's path: open the page, submit the prefilled form and see the prediction; type bad
values and see each reason beside its field; watch the live panel count traffic; see the drift
report `tabserve drift` wrote; open /docs and /redoc with nothing loaded from another host.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import ServerProcess, running_server
from tests.helpers.prometheus import sample_sum

pytestmark = pytest.mark.integration

WAIT_S = 15.0
# Older, richer, first class, female: traffic that drifts from the Titanic training data.
SHIFTED = {
    "Pclass": 1,
    "Sex": "female",
    "Age": 62.0,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 211.5,
    "Embarked": "C",
}


@pytest.fixture(scope="module")
def page_server(
    titanic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path, str]]:
    home = tmp_path_factory.mktemp("page-home")
    reports = home / "reports"
    reports.mkdir()
    log_db = f"sqlite:///{home / 'predictions.db'}"
    env = {"TABSERVE_LOG_DB": log_db, "TABSERVE_REPORT_DIR": str(reports)}
    with running_server(titanic_model_dir, env=env) as server:
        yield server, reports, log_db


def wait_for(driver: Any, check: Any, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: check(d))
    except Exception:
        raise AssertionError(f"timed out waiting for {what}") from None


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def field(driver: Any, name: str) -> tuple[Any, Any]:
    """The input and the error line of feature ``name``."""
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f'.field[data-feature="{name}"]')
    return box.find_element(By.CSS_SELECTOR, "input, select"), box.find_element(
        By.CSS_SELECTOR, ".error"
    )


def submit(driver: Any) -> None:
    form = by_id(driver, "predict-form")
    done = int(form.get_attribute("data-done") or 0)
    by_id(driver, "predict-button").click()
    wait_for(driver, lambda d: int(form.get_attribute("data-done") or 0) > done, "the answer")


def open_page(driver: Any, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, lambda d: by_id(d, "live-total").text != "\u2013", "the first /stats poll")


def foreign_resources(driver: Any, origin: str) -> list[str]:
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])"
    )
    return [u for u in urls if not u.startswith(origin)]


def csp_violations(driver: Any) -> list[str]:
    return [
        e["message"]
        for e in driver.get_log("browser")
        if "Content Security Policy" in e["message"] or "Refused to" in e["message"]
    ]


def test_the_prefilled_form_predicts_like_the_api(browser: Any, page_server: Any) -> None:
    server, _, _ = page_server
    open_page(browser, server.url)
    assert by_id(browser, "model-name").text == "titanic"
    assert by_id(browser, "model-runtime").text == "onnx"
    submit(browser)
    shown = by_id(browser, "prediction-value").text
    sent = by_id(browser, "request-body").get_attribute("textContent")
    api = httpx.post(
        f"{server.url}/predict", content=sent, headers={"content-type": "application/json"}
    ).json()
    assert shown == str(api["prediction"])
    bars = by_id(browser, "prediction-probabilities").text
    assert all(label in bars for label in api["probabilities"])
    # Every feature's input is on the page, and the table lists each with its kind.
    table = by_id(browser, "spec-table").text
    for name in ("Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"):
        field(browser, name)
        assert name in table
    assert foreign_resources(browser, server.url) == []
    assert csp_violations(browser) == []


def test_each_bad_value_is_explained_beside_its_field(browser: Any, page_server: Any) -> None:
    server, _, _ = page_server
    open_page(browser, server.url)
    entries = {"Sex": "robot", "Age": "old", "SibSp": ""}
    for name, text in entries.items():
        box, _ = field(browser, name)
        box.clear()
        if text:
            box.send_keys(text)
    submit(browser)
    assert "400" in by_id(browser, "error-line").text
    messages = {name: field(browser, name)[1] for name in (*entries, "Pclass", "Fare")}
    assert "not a known category" in messages["Sex"].text
    assert "expects a number" in messages["Age"].text
    assert "required" in messages["SibSp"].text
    for fine in ("Pclass", "Fare"):  # untouched fields stay clean
        assert not messages[fine].is_displayed()
    assert field(browser, "Sex")[0].get_attribute("aria-invalid") == "true"
    assert not browser.find_elements("id", "prediction-value")
    # Putting the values right clears the messages and predicts again.
    by_id(browser, "reset-button").click()
    submit(browser)
    assert by_id(browser, "prediction-value").text in ("0", "1")
    assert not messages["Sex"].is_displayed()


def test_live_panel_shows_traffic_rate_and_latency(browser: Any, page_server: Any) -> None:
    server, _, _ = page_server
    open_page(browser, server.url)
    stop = threading.Event()
    sent = [0]

    def traffic() -> None:
        with httpx.Client(base_url=server.url) as client:
            deadline = time.monotonic() + WAIT_S
            while not stop.is_set() and time.monotonic() < deadline:
                client.post("/predict", json=SHIFTED)
                sent[0] += 1
                time.sleep(0.01)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        wait_for(browser, lambda d: by_id(d, "live-p99").text not in ("\u2013", ""), "a live p99")
        rate = float(by_id(browser, "live-rate").text)
        assert rate > 0
        assert float(by_id(browser, "live-p50").text) > 0
    finally:
        stop.set()
        worker.join(timeout=WAIT_S)
    total = float(by_id(browser, "live-total").text.replace(",", ""))
    metrics = httpx.get(f"{server.url}/metrics").text
    served = sum(
        sample_sum(metrics, "tabserve_requests_total", route="/predict", status=s)
        for s in ("200", "400")
    )
    assert 0 < total <= served  # the page counts what the server counted, a poll behind
    assert "1" in by_id(browser, "live-classes").text  # predictions by class are listed


def test_the_latest_drift_report_is_summarized(
    browser: Any, page_server: Any, titanic_model_dir: Path
) -> None:
    server, reports, log_db = page_server
    open_page(browser, server.url)
    wait_for(browser, lambda d: "no drift report" in by_id(d, "drift-body").text, "no report")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(300):
            assert client.post("/predict", json=SHIFTED).status_code == 200
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:  # the log writes off the request path
            text = client.get("/metrics").text
            if sample_sum(text, "tabserve_prediction_log_rows_written_total") >= 300:
                break
            time.sleep(0.1)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabserve",
            "drift",
            str(titanic_model_dir),
            "--log-db",
            log_db,
            "--out",
            str(reports / "drift.html"),
            "--json",
            str(reports / "drift.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    open_page(browser, server.url)
    verdict = wait_for(browser, lambda d: d.find_elements("id", "drift-verdict"), "the verdict")
    assert "DATASET DRIFT" in verdict[0].text
    table = by_id(browser, "drift-table").text
    assert "Sex" in table and "Fare" in table


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/docs", ".swagger-ui .info .title"),
        ("/redoc", ".api-info h1"),
    ],
)
def test_api_docs_render_from_the_server_alone(
    browser: Any, page_server: Any, path: str, rendered: str
) -> None:
    from selenium.webdriver.common.by import By

    server, _, _ = page_server
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(server.url + path)
    title = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, rendered), f"{path} to render"
    )
    assert "tabserve" in title[0].text
    # The operations are there: the document was read and rendered, not just the frame.
    wait_for(browser, lambda d: "/predict" in d.find_element(By.TAG_NAME, "body").text, "/predict")
    assert foreign_resources(browser, server.url) == []
    assert csp_violations(browser) == []
