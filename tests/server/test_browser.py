"""The web page in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by selenium), against a real runtime.

Screenshots go to ``test-artifacts/`` (git-ignored); the Daisi page of Add Two Numbers
after a run is also the README's ``docs/screenshot.png`` (rewritten when
``DAISI_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daisi_async.testing import LocalRuntime
from support.web import MARKUP, TOKENS, daisi_id, submit, wait_until, write_daisies

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1100",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="browser tests need Debian's chromium and chromium-driver"
    " (apt-get install -y chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = write_daisies(tmp_path_factory.mktemp("web-daisies"))
    with LocalRuntime(root, tokens=TOKENS) as rt:
        yield rt


@pytest.fixture(scope="module")
def client(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runtime.api, timeout=60) as c:
        yield c


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile); a screenshot is kept at the end."""
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    profile = tempfile.mkdtemp(prefix="daisi-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: WebDriver, css: str) -> str:
    """The text of the first element matching ``css`` ("" while there is none)."""
    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def enter_token(driver: WebDriver, token: str) -> None:
    driver.find_element(By.ID, "token-input").send_keys(token)
    driver.find_element(By.ID, "token-save").click()
    wait_until(lambda: text_of(driver, "#user-name"), what="the page to show the user")


def test_run_add_two_numbers_from_its_form(runtime: LocalRuntime, browser: WebDriver) -> None:
    browser.get(runtime.url + "/")
    browser.find_element(By.LINK_TEXT, "Add Two Numbers").click()
    wait_until(lambda: text_of(browser, "#daisi-name") == "Add Two Numbers", what="the page")
    signature = text_of(browser, "#endpoint-compute .signature")
    assert signature == "compute(firstNumber: float, secondNumber: float) -> float"
    form = browser.find_element(By.CSS_SELECTOR, "#endpoint-compute form.run-form")
    form.find_element(By.NAME, "firstNumber").send_keys("5")
    form.find_element(By.NAME, "secondNumber").send_keys("6")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    out = "#endpoint-compute .run-result"
    wait_until(lambda: text_of(browser, out) == "11", what="the result 11")
    assert text_of(browser, "#endpoint-compute .status") == "FINISHED"
    browser.save_screenshot(str(ROOT / "test-artifacts" / "add-two-numbers.png"))
    if os.environ.get("DAISI_UPDATE_SCREENSHOT") == "1":
        browser.save_screenshot(str(ROOT / "docs" / "screenshot.png"))
    # The execution's page shows the same result, rendered by the server.
    browser.find_element(By.CSS_SELECTOR, "#endpoint-compute .run-link").click()
    wait_until(lambda: text_of(browser, "#result-json") == "11", what="the execution page")
    assert text_of(browser, "#status") == "FINISHED"


def test_live_logging_lines_arrive_live(runtime: LocalRuntime, browser: WebDriver) -> None:
    browser.get(runtime.url + "/daisies/local/Live%20Logging")
    form = browser.find_element(By.CSS_SELECTOR, "#endpoint-live_log_test form.run-form")
    form.find_element(By.NAME, "firstNumber").send_keys("1")
    form.find_element(By.NAME, "secondNumber").send_keys("2")
    form.find_element(By.NAME, "delay").send_keys("8")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    logs = "#endpoint-live_log_test .run-logs"
    # A step line shows while the run is still going: lines arrive as printed.
    wait_until(lambda: "Step 1/16" in text_of(browser, logs), what="the first step line")
    assert text_of(browser, "#endpoint-live_log_test .status") == "RUNNING"
    assert "Done" not in text_of(browser, logs)
    wait_until(lambda: text_of(browser, "#endpoint-live_log_test .run-result") == "3")
    assert "Done: 1 + 2 = 3" in text_of(browser, logs)


def test_cancel_a_slow_run_from_its_page(
    runtime: LocalRuntime, client: httpx.Client, browser: WebDriver
) -> None:
    did = daisi_id(client, "Web Probe")
    eid = submit(client, did, "slow", {"seconds": 120}, wait=0)["id"]
    browser.get(f"{runtime.url}/executions/{eid}")
    wait_until(lambda: "started" in text_of(browser, "#logs"), what="the slow run to start")
    assert text_of(browser, "#status") == "RUNNING"
    browser.find_element(By.ID, "cancel").click()
    wait_until(lambda: text_of(browser, "#status") == "CANCELLED", what="CANCELLED")
    wait_until(lambda: "cancelled by request" in text_of(browser, "#traceback"))
    assert client.get(f"/v1/executions/{eid}").json()["status"] == "CANCELLED"


def test_private_daisi_visible_only_with_its_token(
    runtime: LocalRuntime, browser: WebDriver
) -> None:
    browser.get(runtime.url + "/")
    assert "Add Two Numbers" in text_of(browser, "#daisies")
    assert "Secret Garden" not in browser.page_source
    browser.get(runtime.url + "/daisies/alice/Secret%20Garden")
    assert "404" in text_of(browser, "h1")
    assert "Secret Garden" not in text_of(browser, "main").replace("'alice/Secret Garden'", "")

    browser.get(runtime.url + "/")
    enter_token(browser, "alice-token")
    assert text_of(browser, "#user-name") == "alice"
    browser.find_element(By.LINK_TEXT, "Secret Garden").click()
    wait_until(lambda: text_of(browser, "#daisi-name") == "Secret Garden")
    form = browser.find_element(By.CSS_SELECTOR, "#endpoint-recipe form.run-form")
    form.find_element(By.NAME, "x").send_keys("21")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: text_of(browser, "#endpoint-recipe .run-result") == "42")

    browser.find_element(By.ID, "token-forget").click()
    wait_until(lambda: not text_of(browser, "#user-name"), what="the token to be forgotten")
    assert "404" in text_of(browser, "h1")


def test_markup_from_daisi_code_is_shown_as_text(
    runtime: LocalRuntime, client: httpx.Client, browser: WebDriver
) -> None:
    did = daisi_id(client, "Web Probe")
    done = submit(client, did, "shout", {"text": MARKUP})
    assert done["status"] == "FINISHED"
    browser.get(f"{runtime.url}/executions/{done['id']}")
    assert text_of(browser, "#logs") == MARKUP
    assert text_of(browser, "#result-json") == json.dumps(MARKUP)
    browser.get(runtime.url + "/daisies/local/Web%20Probe")
    assert MARKUP in text_of(browser, "#daisi-doc")
    assert browser.find_elements(By.CSS_SELECTOR, "#daisi-doc img, #daisi-doc script") == []
    # Live: the same line through the page's form (put on the page by the script).
    form = browser.find_element(By.CSS_SELECTOR, "#endpoint-shout form.run-form")
    form.find_element(By.NAME, "text").send_keys(MARKUP)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: text_of(browser, "#endpoint-shout .status") == "FINISHED")
    assert text_of(browser, "#endpoint-shout .run-logs") == MARKUP
    assert browser.execute_script("return window.__pwned === undefined") is True


def test_executions_list_updates_live(
    runtime: LocalRuntime, client: httpx.Client, browser: WebDriver
) -> None:
    did = daisi_id(client, "Web Probe")
    browser.get(runtime.url + "/executions")
    browser.execute_script("window.__same_page = true")
    wait_until(
        lambda: browser.find_element(By.ID, "executions").get_attribute("data-following") == "yes",
        what="the live feed to connect",
    )
    eid = submit(client, did, "slow", {"seconds": 5}, wait=0)["id"]
    row = f'tr[data-eid="{eid}"] .status'
    wait_until(lambda: text_of(browser, row) in ("QUEUED", "RUNNING"), what="the new row")
    wait_until(lambda: text_of(browser, row) == "FINISHED", what="FINISHED without reload")
    assert browser.execute_script("return window.__same_page") is True  # never reloaded


def test_broken_token_browses_anonymously(runtime: LocalRuntime, browser: WebDriver) -> None:
    browser.get(runtime.url + "/")
    browser.find_element(By.ID, "token-input").send_keys("not-a-token")
    browser.find_element(By.ID, "token-save").click()
    wait_until(lambda: "not valid" in text_of(browser, "#warning"), what="the warning")
    assert "Add Two Numbers" in text_of(browser, "#daisies")
