"""Load time and size of the server's pages (/, /docs, /redoc) in headless Chromium.

    python benchmarks/page_load.py MODEL_DIR [--rounds 10]

Starts `tabserve serve MODEL_DIR` on a free loopback port (prediction log off), opens each page
``--rounds`` times with the browser cache off (a first visit) and as many times with it on (a
return visit: assets answer 304 or come from cache), and prints the median and worst navigation
timings (DOMContentLoaded, load) and the bytes on the wire (compressed) and decoded. For the model
page also the time until its live panel shows the first /stats poll. Needs Debian's chromium and
chromium-driver (the browser test installs them) and selenium (the dev extra).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.browser import chrome_arguments, chromium_binary  # noqa: E402

from tabserve.local_server import free_port, stop, wait_ready  # noqa: E402

TIMING = """
const nav = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource');
const sum = (k) => res.reduce((s, e) => s + e[k], nav[k]);
return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
        wire: sum('transferSize'), decoded: sum('decodedBodySize'), files: res.length + 1};
"""


def measure(driver: Any, url: str, live: bool) -> dict[str, float]:
    started = time.perf_counter()
    driver.get(url)
    while driver.execute_script("return performance.getEntriesByType('navigation')[0]"
                                ".loadEventEnd") == 0:  # fmt: skip
        time.sleep(0.005)
    out: dict[str, float] = driver.execute_script(TIMING)
    if live:
        while driver.find_element("id", "live-total").text == "\u2013":
            time.sleep(0.005)
        out["live"] = 1000 * (time.perf_counter() - started)
    return out


def summary(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{statistics.median(values):7.1f} (max {max(values):7.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="tabserve-page-load-"))
    server = subprocess.Popen(
        [sys.executable, "-m", "tabserve", "serve", args.model_dir, "--port", str(port),
         "--log-db", "off"],
        cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for arg in chrome_arguments(home / "profile"):
        options.add_argument(arg)
    driver = None
    try:
        wait_ready(url, server, 60)
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        print(f"{'page':<8} {'visit':<6} {'DOMContentLoaded ms':>22} {'load ms':>22} "
              f"{'live panel ms':>22} {'on the wire KB':>15} {'decoded KB':>11} files")  # fmt: skip
        for path in ("/", "/docs", "/redoc"):
            for visit, cache_off in (("first", True), ("return", False)):
                driver.execute_cdp_cmd("Network.enable", {})
                driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": cache_off})
                measure(driver, url + path, path == "/")  # warm the server and the browser
                rows = [measure(driver, url + path, path == "/") for _ in range(args.rounds)]
                live = summary(rows, "live") if path == "/" else f"{'-':>22}"
                print(f"{path:<8} {visit:<6} {summary(rows, 'dcl'):>22} {summary(rows, 'load'):>22}"
                      f" {live:>22} {rows[-1]['wire'] / 1024:15.1f}"
                      f" {rows[-1]['decoded'] / 1024:11.1f} {rows[-1]['files']:5.0f}")  # fmt: skip
    finally:
        if driver is not None:
            driver.quit()
        stop(server)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
