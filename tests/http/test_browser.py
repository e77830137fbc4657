"""The scanner page in real headless Chromium (Debian chromium + chromium-driver, selenium).

English and Russian browsers, the photo fallback, a keyboard-wedge scanner (type + Enter),
a live scan from a fake camera through the vendored jsQR decoder, the scanner-key prompt.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keys.qr import png_bytes, write_png

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium"),
]

EN_EXPIRED = "The certificate has expired."
RU_EXPIRED = "Срок действия сертификата истёк."


@pytest.fixture
def chromium() -> Iterator[Callable[..., Any]]:
    """Factory: chromium(lang="en"|"ru", camera=Y4M_PATH, height=900) -> a WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []
    profiles: list[str] = []

    def start(lang: str = "en", camera: Path | None = None, height: int = 900) -> Any:
        profile = tempfile.mkdtemp(prefix="qrverify-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size=420,{height}",
            f"--lang={lang}",
        ):
            options.add_argument(flag)
        accept = "ru-RU,ru,en" if lang == "ru" else "en-US,en"
        options.add_experimental_option("prefs", {"intl.accept_languages": accept})
        if camera is not None:
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument("--use-fake-ui-for-media-stream")
            options.add_argument(f"--use-file-for-fake-video-capture={camera}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _result(driver: Any, previous: str | None = None) -> dict[str, Any]:
    """Wait for a settled result (not idle, not checking, not `previous`) and read it."""

    def settled(d: Any) -> Any:
        status = d.find_element("id", "result").get_attribute("data-status")
        return status not in ("idle", "checking", previous) and status

    _wait(driver, settled)
    get = lambda i: driver.find_element("id", i)  # noqa: E731
    return {
        "status": get("result").get_attribute("data-status"),
        "title": get("result-status").text,
        "reason": get("reason").text,
        "detail": get("detail").get_attribute("textContent"),
        "name": get("holder-name").text,
        "latin": get("holder-latin").text,
        "dob": get("holder-dob").text,
        "cert": get("cert-info").text,
        "holder_shown": get("holder").is_displayed(),
        "background": get("result").value_of_css_property("background-color"),
    }


def _next_result(driver: Any, count_before: int) -> dict[str, Any]:
    """Wait until the page has shown one more verdict than `count_before`, then read it."""
    _wait(driver, lambda d: d.execute_script("return window.__verdicts || 0") > count_before)
    return _result(driver)


COUNT_VERDICTS = """
  window.__verdicts = 0;
  new MutationObserver(() => {
    const s = document.getElementById('result').dataset.status;
    if (s === 'valid' || s === 'invalid' || s === 'error') window.__verdicts += 1;
  }).observe(document.getElementById('result'), {attributes: true,
                                                 attributeFilter: ['data-status']});
"""


def _statuses(server: Any) -> list[int]:
    """HTTP statuses of the server's access log lines (JSON lines on stderr)."""
    out = []
    for line in server.logs().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("status"), int):
            out.append(rec["status"])
    return out


# -- English: photo, paste, favicon, one photo control, no key field -------------------------


def test_photo_fallback_valid_then_invalid(
    chromium: Any, serve: Any, demo: Any, tokens: Any, tmp_path: Path
) -> None:
    server = serve(["--trust", str(demo.trust_path)])
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    write_png(tokens.valid, good)
    write_png(tokens.unknown_key, bad)
    browser = chromium("en")

    browser.get(server.url + "/")
    assert browser.title == "qrverify scanner"
    assert browser.find_element("tag name", "h1").text == "Certificate check"
    assert browser.find_element("id", "lang").text == "Русский"
    # no API keys on this server: no scanner-key control
    assert not browser.find_element("id", "settings-toggle").is_displayed()
    # one visible control for the photo: the big label; the file input itself is off-screen
    label = browser.find_element("id", "photo-button")
    photo = browser.find_element("id", "photo")
    assert label.is_displayed() and label.text == "Take a photo of the QR code"
    assert photo.size["width"] <= 1 and photo.size["height"] <= 1
    assert photo.get_attribute("capture") == "environment"

    photo.send_keys(str(good))
    r = _result(browser)
    assert r["status"] == "valid" and r["title"] == "VALID"
    assert r["reason"] == "Entry allowed."
    assert r["name"] == tokens.name and r["dob"] == tokens.dob
    assert "<" not in r["latin"] and r["latin"] == tokens.name  # "SIDOROVA<MARIYA" reads plainly
    assert r["cert"].startswith("Vaccination · ") and "valid until 20" in r["cert"]
    assert r["background"] == "rgba(18, 130, 59, 1)"  # green
    # the date is one unbreakable piece
    date = browser.find_element("css selector", "#cert-info .date")
    assert r["cert"].endswith("valid until " + date.text) and len(date.text) == 10
    assert date.value_of_css_property("white-space") == "nowrap"
    # nothing sticks out of the result box at phone width
    assert browser.execute_script(
        "const b = document.getElementById('result'); return b.scrollWidth <= b.clientWidth"
    )

    browser.find_element("id", "next").click()
    photo.send_keys(str(bad))
    r = _result(browser)
    assert r["status"] == "invalid" and r["title"] == "INVALID"
    assert r["reason"] == "The certificate was signed by an issuer we do not trust."
    assert r["background"] == "rgba(192, 32, 43, 1)"  # red
    assert not r["holder_shown"]  # no unverified data
    assert browser.find_element("id", "holder-name").get_attribute("textContent") == ""

    # the paste box and the Check button: an expired certificate, reason in plain words
    browser.find_element("id", "next").click()
    browser.find_element("id", "token").send_keys(tokens.expired)
    browser.find_element("id", "paste-check").click()
    r = _result(browser)
    assert r["status"] == "invalid" and r["reason"] == EN_EXPIRED
    # the favicon is served and the page made no request that failed
    statuses = _statuses(server)
    assert server.stop() == 0
    assert tokens.name not in server.logs()
    assert statuses and 404 not in statuses, statuses


def test_empty_check_feedback_and_error_clears_old_result(
    chromium: Any, serve: Any, demo: Any, tokens: Any, tmp_path: Path
) -> None:
    from PIL import Image

    server = serve(["--trust", str(demo.trust_path)])
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    browser = chromium("en")
    browser.get(server.url + "/")

    browser.find_element("id", "paste-check").click()  # an empty box
    box = browser.find_element("id", "result")
    assert box.get_attribute("data-status") == "idle"
    assert "nudge" in box.get_attribute("class")
    assert browser.find_element("id", "reason").text == "Scan or paste a code first."

    browser.find_element("id", "token").send_keys(tokens.valid)
    browser.find_element("id", "paste-check").click()
    r = _result(browser)
    assert r["status"] == "valid" and r["name"] == tokens.name

    # a photo without a QR code: an error, and the previous guest's data is gone
    browser.find_element("id", "photo").send_keys(str(blank))
    r = _result(browser, previous="valid")
    assert r["status"] == "error" and r["title"] == "NOT CHECKED"
    assert r["reason"].startswith("Could not check")
    assert not r["holder_shown"] and r["name"] == "" and r["dob"] == ""


def test_invalid_headline_stays_in_view(chromium: Any, serve: Any, demo: Any, tokens: Any) -> None:
    server = serve(["--trust", str(demo.trust_path)])
    browser = chromium("en", height=520)
    browser.get(server.url + "/")
    field = browser.find_element("id", "token")
    field.send_keys(tokens.unknown_key + "\n")
    r = _result(browser)
    assert r["status"] == "invalid"
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    assert browser.execute_script("return window.scrollY") > 0  # the page did scroll
    rect = browser.execute_script(
        "const r = document.getElementById('result-status').getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight];"
    )
    assert rect[0] >= 0 and rect[1] <= rect[2], rect


# -- Russian: the keyboard-wedge flow, then a switch to English -----------------------------


def test_keyboard_wedge_in_russian(chromium: Any, serve: Any, demo: Any, tokens: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    server = serve(["--trust", str(demo.trust_path)])
    browser = chromium("ru")
    browser.get(server.url + "/")
    browser.execute_script(COUNT_VERDICTS)
    assert browser.execute_script("return navigator.languages[0]").startswith("ru")
    assert browser.title == "qrverify: проверка сертификатов"
    assert browser.find_element("tag name", "h1").text == "Проверка сертификата"
    assert browser.find_element("id", "result-status").text == "Готов к проверке"
    assert browser.find_element("id", "paste-check").text == "Проверить"
    assert browser.find_element("id", "photo-button").text == "Сфотографировать QR-код"
    assert browser.find_element("id", "camera-start").text == "Включить камеру"
    assert browser.find_element("id", "lang").text == "English"
    assert browser.find_element("tag name", "html").get_attribute("lang") == "ru"

    # the scanner "types" into whatever has the focus: the text box, with no click
    active = browser.switch_to.active_element
    assert active.get_attribute("id") == "token"
    active.send_keys(tokens.valid + Keys.ENTER)
    r = _next_result(browser, 0)
    assert r["status"] == "valid" and r["title"] == "ДЕЙСТВИТЕЛЕН"
    assert r["reason"] == "Вход разрешён." and r["name"] == tokens.name
    assert r["cert"].startswith("Вакцинация · ") and "действует до 20" in r["cert"]
    assert browser.find_element("id", "compare").text == "Сверьте эти данные с документом гостя."
    box = browser.find_element("id", "token")
    assert box.get_attribute("value") == ""
    assert browser.switch_to.active_element.get_attribute("id") == "token"

    # the next guest: again only keys, no click
    browser.switch_to.active_element.send_keys(tokens.expired + Keys.ENTER)
    r = _next_result(browser, 1)
    assert r["status"] == "invalid" and r["title"] == "НЕДЕЙСТВИТЕЛЕН"
    assert r["reason"] == RU_EXPIRED
    assert box.get_attribute("value") == ""
    assert browser.switch_to.active_element.get_attribute("id") == "token"
    assert browser.execute_script("return window.__verdicts") == 2

    # switch to English: every string and the result on screen, remembered across a reload
    browser.find_element("id", "lang").click()
    assert browser.find_element("tag name", "h1").text == "Certificate check"
    assert browser.find_element("id", "result-status").text == "INVALID"
    assert browser.find_element("id", "reason").text == EN_EXPIRED
    assert browser.find_element("id", "next").text == "Next guest"
    browser.refresh()
    assert browser.find_element("tag name", "h1").text == "Certificate check"
    assert browser.find_element("id", "result-status").text == "Ready to scan"
    assert browser.find_element("tag name", "html").get_attribute("lang") == "en"


def test_api_calls_carry_the_page_language(
    chromium: Any, serve: Any, demo: Any, tokens: Any
) -> None:
    """The page asks for `detail` in its language; the service may answer in Russian."""
    server = serve(["--trust", str(demo.trust_path)])
    browser = chromium("ru")
    browser.get(server.url + "/")
    browser.execute_script("""
      window.__sent = [];
      const real = window.fetch;
      window.fetch = (url, opts) => { window.__sent.push((opts || {}).headers || {});
                                      return real(url, opts); };""")
    browser.switch_to.active_element.send_keys(tokens.expired + "\n")
    r = _result(browser)
    assert r["status"] == "invalid" and r["reason"] == RU_EXPIRED
    sent = browser.execute_script("return window.__sent")
    assert sent and sent[0]["Accept-Language"].startswith("ru")
    # the service's own sentence is shown beneath, in the page's language
    assert any("\u0400" <= ch <= "\u04ff" for ch in r["detail"]), r["detail"]
    browser.find_element("id", "lang").click()
    browser.find_element("id", "next").click()
    browser.switch_to.active_element.send_keys(tokens.expired + "\n")
    r = _result(browser)
    assert r["reason"] == EN_EXPIRED
    sent = browser.execute_script("return window.__sent")
    assert sent[-1]["Accept-Language"] == "en"
    assert r["detail"] and not any("\u0400" <= ch <= "\u04ff" for ch in r["detail"])


# -- a register-link verdict: the holder's document is shown ---------------------------------


def test_register_link_verdict_shows_the_document(chromium: Any, serve: Any, demo: Any) -> None:
    server = serve(["--trust", str(demo.trust_path)])
    browser = chromium("ru")
    browser.get(server.url + "/")
    browser.execute_script("""showVerdict({status: "valid", reason: null, detail: "",
      holder: {name: "И***** И*** И*******", name_latin: "I***** I*** I*******",
               dob: "1980-01-01", document: "45** ***123"},
      certificate: {type: "vaccination", issuer: "RU", valid_until: "2022-07-01T20:59:59Z"}});""")
    assert browser.find_element("id", "holder-document-label").text == "Документ"
    assert browser.find_element("id", "holder-document").text == "45** ***123"
    assert browser.find_element("id", "holder-name").text == "И***** И*** И*******"
    assert browser.find_element("id", "cert-info").text == (
        "Вакцинация · RU · действует до 2022-07-01"
    )
    # an EU certificate has no document: the row is hidden again
    browser.execute_script("""showVerdict({status: "valid", reason: null, detail: "",
      holder: {name: "Иванов Иван", name_latin: "IVANOV<IVAN", dob: "1980-01-01"},
      certificate: {type: "test", issuer: "DE", valid_until: "2022-07-01T00:00:00Z"}});""")
    assert not browser.find_element("id", "holder-document").is_displayed()
    assert browser.find_element("id", "holder-latin").text == "IVANOV IVAN"


# -- live camera: a fake camera shows the QR, the vendored jsQR reads it ---------------------


def _y4m_of_qr(token: str, path: Path, width: int = 640, height: int = 480) -> None:
    """A still video (YUV4MPEG2, 4:2:0) of the token's QR code on a white background."""
    from PIL import Image

    qr = Image.open(io.BytesIO(png_bytes(token))).convert("L")
    side = height - 40
    qr = qr.resize((side, side), Image.Resampling.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(qr, ((width - side) // 2, (height - side) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(3):
            fh.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.mark.slow
def test_live_camera_scan_with_jsqr(
    chromium: Any, serve: Any, demo: Any, tokens: Any, tmp_path: Path
) -> None:
    server = serve(["--trust", str(demo.trust_path)])
    video = tmp_path / "qr.y4m"
    _y4m_of_qr(tokens.valid, video)
    browser = chromium("en", camera=video)
    # force the vendored decoder even in a browser that has BarcodeDetector
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.BarcodeDetector;"}
    )
    browser.get(server.url + "/")
    assert browser.execute_script("return 'BarcodeDetector' in window") is False
    assert browser.find_element("id", "camera-box").is_displayed()
    browser.find_element("id", "camera-start").click()
    r = _result(browser, previous=None)
    assert r["status"] == "valid", r
    assert r["name"] == tokens.name and r["dob"] == tokens.dob
    assert browser.find_element("id", "camera-box").get_attribute("data-decoder") == "jsqr"
    assert browser.execute_script("return typeof window.jsQR") == "function"
    assert browser.find_element("id", "camera-stop").is_displayed()


# -- a service with API keys: the key field appears when the service asks for it -------------


def test_scanner_key_prompt(
    chromium: Any, serve: Any, demo: Any, tokens: Any, api_key_file: Path, tmp_path: Path
) -> None:
    server = serve(["--trust", str(demo.trust_path), "--api-keys", str(api_key_file)])
    good = tmp_path / "good.png"
    write_png(tokens.valid, good)
    browser = chromium("en")
    browser.get(server.url + "/")
    assert not browser.find_element("id", "settings-toggle").is_displayed()
    photo = browser.find_element("id", "photo")
    photo.send_keys(str(good))
    r = _result(browser)
    assert r["status"] == "error" and "scanner key" in r["reason"]
    assert browser.find_element("id", "settings-toggle").is_displayed()
    browser.find_element("id", "api-key").send_keys("cafe-secret-0123456789")
    browser.find_element("id", "api-key-save").click()
    browser.find_element("id", "next").click()
    photo.send_keys(str(good))
    r = _result(browser, previous="error")
    assert r["status"] == "valid" and r["name"] == tokens.name
    # the key is remembered: the control stays after a reload
    browser.refresh()
    assert browser.find_element("id", "settings-toggle").is_displayed()
