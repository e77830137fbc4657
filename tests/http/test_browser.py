"""The scanner page in real headless Chromium (Debian chromium + chromium-driver, selenium)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keys.qr import write_png

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="qrverify-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=420,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _result(driver: Any, previous: str | None = None) -> dict[str, str]:
    from selenium.webdriver.support.ui import WebDriverWait

    def settled(d: Any) -> Any:
        status = d.find_element("id", "result").get_attribute("data-status")
        return status not in ("idle", previous) and status

    WebDriverWait(driver, 30).until(settled)
    get = lambda i: driver.find_element("id", i)  # noqa: E731
    return {
        "status": get("result").get_attribute("data-status"),
        "class": get("result").get_attribute("class"),
        "title": get("result-status").text,
        "reason": get("reason").text,
        "name": get("holder-name").text,
        "dob": get("holder-dob").text,
        "background": get("result").value_of_css_property("background-color"),
    }


def test_photo_fallback_valid_then_invalid(browser: Any, serve: Any, demo: Any, tokens: Any,
                                           tmp_path: Path) -> None:
    server = serve(["--trust", str(demo.trust_path)])
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    write_png(tokens.valid, good)
    write_png(tokens.unknown_key, bad)

    browser.get(server.url + "/")
    assert browser.title == "qrverify scanner"
    # headless Chromium on Linux has no BarcodeDetector: the photo fallback is offered
    note = browser.find_element("id", "camera-note")
    photo = browser.find_element("id", "photo")
    assert photo.get_attribute("capture") == "environment"

    photo.send_keys(str(good))
    r = _result(browser)
    assert r["status"] == "valid" and r["title"] == "VALID"
    assert r["name"] == tokens.name and r["dob"] == tokens.dob
    assert r["background"] == "rgba(18, 130, 59, 1)"  # green
    assert note.is_displayed()

    browser.find_element("id", "next").click()
    photo.send_keys(str(bad))
    r = _result(browser)
    assert r["status"] == "invalid" and r["title"] == "INVALID"
    assert r["reason"] == "The certificate was signed by an issuer we do not trust."
    assert r["background"] == "rgba(192, 32, 43, 1)"  # red
    assert not browser.find_element("id", "holder").is_displayed()  # no unverified data
    assert browser.find_element("id", "holder-name").get_attribute("textContent") == ""

    # the paste box: an expired certificate, reason in plain words
    browser.find_element("id", "next").click()
    browser.find_element("id", "token").send_keys(tokens.expired)
    browser.find_element("id", "paste-check").click()
    r = _result(browser)
    assert r["status"] == "invalid" and r["reason"] == "The certificate has expired."
    assert server.stop() == 0
    assert tokens.name not in server.logs()


def test_scanner_key_prompt(browser: Any, serve: Any, demo: Any, tokens: Any,
                            api_key_file: Path, tmp_path: Path) -> None:
    server = serve(["--trust", str(demo.trust_path), "--api-keys", str(api_key_file)])
    good = tmp_path / "good.png"
    write_png(tokens.valid, good)
    browser.get(server.url + "/")
    photo = browser.find_element("id", "photo")
    photo.send_keys(str(good))
    r = _result(browser)
    assert r["status"] == "error" and "scanner key" in r["reason"]
    browser.find_element("id", "api-key").send_keys("cafe-secret-0123456789")
    browser.find_element("id", "api-key-save").click()
    browser.find_element("id", "next").click()
    photo.send_keys(str(good))
    r = _result(browser, previous="error")
    assert r["status"] == "valid" and r["name"] == tokens.name
