"""Screenshots of the explorer page for ``docs/`` (headless Chromium; see ``fusionrec.serving.browser``).

    python benchmarks/serving_screenshots.py RUN_DIR --user 414 --out docs/figures

writes ``explorer.png`` (a user's history, recommendations and the run's metrics) and
``explorer-why.png`` (the same after clicking the first recommendation: its attention weights).
The screenshots in docs/serving.md come from a MARIO run on MovieLens latest-small with posters; the
commands that make that run are in docs/serving.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fusionrec.serving.browser import chromium, served
from fusionrec.serving.service import Service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--user", required=True)
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args()

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium(width=1500, height=1000)
    try:
        with served(Service.from_run_dir(args.run_dir)) as url:
            browser.get(f"{url}/?user={args.user}")
            wait = WebDriverWait(browser, 60)
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
            wait.until(lambda d: all(img.get_attribute("complete") for img in d.find_elements(By.TAG_NAME, "img")))
            browser.save_screenshot(str(out / "explorer.png"))
            browser.find_elements(By.CSS_SELECTOR, "[data-testid=recs] .card")[0].click()
            wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=why] .bar")))
            browser.save_screenshot(str(out / "explorer-why.png"))
    finally:
        browser.quit()
    print(f"wrote {out / 'explorer.png'} and {out / 'explorer-why.png'}")


if __name__ == "__main__":
    main()
