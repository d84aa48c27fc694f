"""Driving the explorer in headless Chromium: a served app on a free local port and a Selenium driver.

Used by the browser test and by ``benchmarks/serving_screenshots.py`` (the screenshots in ``docs/``).
Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``selenium``; :class:`BrowserMissing` names what is absent.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fusionrec.errors import FusionrecError
from fusionrec.serving.service import Service

# Chromium's own background services try hosts this machine cannot reach; without these flags they
# are refused many times at every start.
QUIET_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class BrowserMissing(FusionrecError):
    """Chromium, its driver or Selenium is not installed."""


def chromium(width: int = 1400, height: int = 900) -> Any:
    """A headless Chromium WebDriver of the given window size."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        raise BrowserMissing("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        raise BrowserMissing("selenium is not installed (pip install selenium)") from None
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*QUIET_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=DriverService(executable_path=driver), options=options)


@contextmanager
def served(service: Service) -> Iterator[str]:
    """The service's app on ``127.0.0.1`` at a free port, in a thread, for the ``with`` block; yields its URL."""
    import uvicorn

    from fusionrec.serving.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise FusionrecError(f"the explorer did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
