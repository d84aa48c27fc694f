"""The explorer page in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

Skipped with a one-line reason where the browser, its driver or Selenium is missing; `.ci/run` installs them.
"""

from __future__ import annotations

import shutil

import pytest

from fusionrec import api
from fusionrec.serving.browser import BrowserMissing, chromium, served
from fusionrec.serving.service import Service


@pytest.fixture(scope="module")
def browser():
    try:
        driver = chromium(width=1400, height=900)
    except BrowserMissing as exc:
        pytest.skip(str(exc))
    yield driver
    driver.quit()


def test_the_explorer_shows_history_recommendations_reasons_and_metrics(browser, runs, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    run = api.load_run(runs["mario"])
    user = str(run.dataset.user_ids[3])
    expected = [r["item"] for r in api.recommend(runs["mario"], user, k=10)]
    with served(Service.from_run_dir(runs["mario"])) as url:
        browser.get(f"{url}/?user={user}")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=error]").text == ""
        assert "mario" in browser.find_element(By.CSS_SELECTOR, "[data-testid=facts]").text
        cards = browser.find_elements(By.CSS_SELECTOR, "[data-testid=recs] .card")
        assert [c.get_attribute("data-item") for c in cards] == expected
        assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=history] .card")
        assert "test" in browser.find_element(By.CSS_SELECTOR, "[data-testid=metrics]").text
        cards[0].click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=why] .bar")))
        labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=why] .bar .label")]
        assert set(labels) >= set(run.model.modality_names)
        browser.find_element(By.CSS_SELECTOR, "[data-testid=user-input]").clear()
        browser.find_element(By.CSS_SELECTOR, "[data-testid=user-input]").send_keys("nobody")
        browser.find_element(By.CSS_SELECTOR, "[data-testid=go]").click()
        wait.until(lambda d: "unknown user" in d.find_element(By.CSS_SELECTOR, "[data-testid=error]").text)
        shot = tmp_path / "explorer.png"
        browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"


def test_chromium_missing_is_a_clear_skip_reason(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(BrowserMissing, match="chromium"):
        chromium()
