"""The inbox page in a real browser: headless Debian chromium, a real `timestep serve`, a worker.

Under CI a missing chromium/chromedriver (or selenium) is a failure, not a skip. The tests save
screenshots of the page's views under `SCREENSHOTS` (the run's summary names the folder).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .components import unavailable
from .helpers import ExecutionLog
from .processes import (
    ROOT,
    cli,
    env_for,
    start_serve,
    start_stream_app,
    start_worker,
    stop,
    wait_for_status,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-token-5f2c9a0e7d"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("TIMESTEP_TEST_SCREENSHOTS", ROOT / "build" / "screenshots"))
"""Where the PNGs of the page's views go (tests/conftest.py names it in the run's summary)."""
DESKTOP = (1400, 1000)
PHONE = (390, 844)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            unavailable(f"{path} is missing (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
        raise
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(*DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(browser: Any, name: str) -> None:
    """Save the page as it looks now to SCREENSHOTS/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def console_errors(browser: Any) -> list[str]:
    """The browser console's errors so far (a failed request shows there too)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def pretty(arguments: str) -> str:
    """Arguments as the page shows them: indented JSON, each line made visible."""
    from timestep.cli.safe import visible

    lines = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False).splitlines()
    return "\n".join(visible(line) for line in lines)


def test_page_approves_a_pending_call_and_the_worker_finishes(browser: Any, tmp_path: Path) -> None:
    """The approver's path: a wrong token is said so, the right one opens the list (pending
    first, the count in the title), a call is read as indented JSON and approved with the `a`
    key, the live view shows the run finish, the other run is rejected with a message by keys;
    rows are updated in place; search, its empty state and a phone-sized window."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    env = env_for(database_url, tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    for run_id in ("page-1", "page-2"):
        parked = cli(env, "run", "tests.apps.mail_app:mailer", "mail bob", "--run-id", run_id)
        assert parked.returncode == 3, parked.stderr

    server, url = start_serve(env, "--token", TOKEN, "--access-log", verbose=True, capture=True)
    worker = None
    try:
        wait = WebDriverWait(browser, 60)

        browser.get(f"{url}#token=wrong-token")
        refused = wait.until(lambda d: d.find_element(By.ID, "login-error"))
        wait.until(lambda d: refused.is_displayed() and "refused" in refused.text)
        assert browser.find_element(By.ID, "login").is_displayed()
        screenshot(browser, "wrong-token")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        row = wait.until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#pending .run[data-run-id='page-1']")
        )
        other = browser.find_element(By.CSS_SELECTOR, "#pending .run[data-run-id='page-2']")
        wait.until(lambda d: d.title == "(2) Timestep approvals")
        assert "awaiting approval" in row.text and "wants to call send_email" in row.text
        assert not browser.find_element(By.ID, "login-error").is_displayed()
        screenshot(browser, "list")
        row.click()

        call = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".call.open"))
        assert "send_email" in call.text
        arguments = call.find_element(By.CSS_SELECTOR, "pre.arguments").text
        assert arguments == pretty('{"to":"bob@example.com","body":"hi"}')
        assert arguments.startswith('{\n  "to": "bob@example.com",')
        awaiting = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#conversation .entry"))
        assert awaiting.text.startswith("user: ")
        assert "awaits approval" in browser.find_element(By.ID, "conversation").text
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline li.step.model"))
        # The run was not started with stream=True: the page says so without asking for events.
        assert "stream=True" in browser.find_element(By.ID, "events").text
        screenshot(browser, "detail-pending")
        browser.find_element(By.TAG_NAME, "body").send_keys("a")  # the approve key
        # No worker yet: the decision is shown, and what the run waits for now.
        decided = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".call[data-decision]"))
        assert decided.text.endswith("Approved")
        wait.until(lambda d: "no live process" in d.find_element(By.ID, "detail-status").text)
        assert "timestep worker --app" in browser.find_element(By.ID, "detail-status").text
        screenshot(browser, "detail-approved-no-worker")
        worker = start_worker(env, "tests.apps.mail_app")

        record = wait_for_status(database_url, "page-1", "completed")
        assert record["final_output"] == "mail handled"
        sent = ExecutionLog(tmp_path / "log.jsonl").entries("tool")
        assert [e["to"] for e in sent if e["name"] == "send_email"] == ["bob@example.com"]
        # The live view shows the finished run, its output, its timeline and conversation.
        wait.until(
            lambda d: (
                d.find_element(By.ID, "detail-status").get_attribute("data-status") == "completed"
            )
        )
        assert browser.find_element(By.CSS_SELECTOR, ".final-output").text == "mail handled"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline li.step")) == 4)
        timeline = browser.find_element(By.ID, "timeline").text
        assert "tool send_email" in timeline and "stopped for approval" in timeline
        assert "completed" in timeline
        wait.until(lambda d: "← " in d.find_element(By.ID, "conversation").text)
        assert "awaits approval" not in browser.find_element(By.ID, "conversation").text
        wait.until(lambda d: d.title == "(1) Timestep approvals")
        screenshot(browser, "detail-after-approval")
        # The other run's row is the element found before: updated in place, never replaced.
        assert other.get_attribute("data-run-id") == "page-2" and other.is_displayed()

        # The other run by keys: j moves to it, m writes the message, Enter rejects.
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("k")  # page-1 is first in the list now that page-2 alone waits
        wait.until(lambda d: "selected" in (other.get_attribute("class") or ""))
        wait.until(
            lambda d: (
                d.find_element(By.ID, "detail-title").text == "page-2"
                and d.find_elements(By.CSS_SELECTOR, ".call.open button.reject")
            )
        )
        body.send_keys("m")
        message = browser.switch_to.active_element
        assert "message" in (message.get_attribute("class") or "")
        message.send_keys("not today", Keys.ENTER)
        wait_for_status(database_url, "page-2", "completed")
        models = ExecutionLog(tmp_path / "log.jsonl").entries("model")
        assert models[-1]["tool_outputs"] == ["bob@example.com", "not today"]
        sent = ExecutionLog(tmp_path / "log.jsonl").entries("tool")
        assert [e["to"] for e in sent if e["name"] == "send_email"] == ["bob@example.com"]
        wait.until(lambda d: d.title == "Timestep approvals")
        wait.until(lambda d: "Nothing waits" in d.find_element(By.ID, "pending-empty").text)

        search = browser.find_element(By.ID, "search")
        search.send_keys("no-such-run")
        wait.until(lambda d: "No other run matching" in d.find_element(By.ID, "runs-empty").text)
        screenshot(browser, "search-empty")
        search.clear()
        search.send_keys("page-2")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs .run")) == 1)
        browser.set_window_size(*PHONE)
        wait.until(lambda d: d.find_element(By.ID, "back").is_displayed())
        assert not browser.find_element(By.ID, "list").is_displayed()
        screenshot(browser, "phone-detail")
        browser.find_element(By.ID, "back").click()
        wait.until(lambda d: d.find_element(By.ID, "list").is_displayed())
        screenshot(browser, "phone-list")

        assert browser.get_cookies() == []
        assert not browser.find_element(By.ID, "error").is_displayed()
        # No failed request on the page: no favicon 404, no 409 for a run without events. The
        # one refused request is the wrong token's.
        errors = console_errors(browser)
        assert len(errors) == 1 and "401" in errors[0], errors
    finally:
        if worker is not None:
            code, err = stop(worker)
            assert code == 0, err
        server.terminate()
        output, _ = server.communicate(timeout=30)
    # The access log lists requests without headers: the token is in no log line...
    assert "GET /api/inbox/live?" in output and "POST /api/run/approve?id=page-1" in output
    assert "POST /api/run/reject?id=page-2" in output
    assert TOKEN not in output
    # ...and nowhere in the database.
    for path in tmp_path.glob("timestep.sqlite*"):
        assert TOKEN.encode() not in path.read_bytes()


def test_serve_generates_a_token_prints_it_once_and_logs_no_header(
    browser: Any, tmp_path: Path
) -> None:
    """`serve --create` on a new database prints its link with the generated token once; the
    link opens the page, which says there are no runs yet."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    env = env_for(f"sqlite:///{tmp_path}/timestep.sqlite", tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    server, url = start_serve(env, "--access-log", "--create", capture=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith(f"approval inbox on {url}#token="), first
        link = first.split(" ")[3]
        token = link.split("#token=", 1)[1]
        assert len(token) >= 40
        assert httpx.get(url + "api/runs").status_code == 401
        answer = httpx.get(url + "api/runs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json() == {"runs": [], "next_offset": None}
        assert "set-cookie" not in answer.headers
        browser.get(link)
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "No runs yet" in d.find_element(By.ID, "runs-empty").text)
        assert "Nothing waits" in browser.find_element(By.ID, "pending-empty").text
        assert "Pick a run" in browser.find_element(By.ID, "detail-empty").text
        screenshot(browser, "empty")
        assert console_errors(browser) == []
    finally:
        server.terminate()
        rest, _ = server.communicate(timeout=30)
    assert '"GET /api/runs HTTP/1.1" 401' in rest and '"GET /api/runs HTTP/1.1" 200' in rest
    assert token not in rest  # printed once, in the first line only
    for path in tmp_path.glob("timestep.sqlite*"):
        assert token.encode() not in path.read_bytes()


def test_page_shows_a_streaming_run_live(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    log_path = tmp_path / "log.jsonl"
    gate = tmp_path / "gate"
    env = env_for(database_url, log_path, TIMESTEP_TEST_GATE=str(gate))
    env.pop("TIMESTEP_TOKEN", None)
    server, url = start_serve(env, "--token", TOKEN, "--create")
    runner = None
    try:
        runner = start_stream_app(env, database_url, log_path)
        wait = WebDriverWait(browser, 60)
        browser.get(f"{url}#token={TOKEN}")  # the link `timestep serve` prints
        assert "token" not in browser.current_url  # dropped from the address at once
        # The run appears without a reload: the server's live view sends it.
        row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".run[data-run-id='s-1']"))
        row.click()
        # Held before its final answer: the events so far are shown, the run is running.
        wait.until(lambda d: "timestep.model_call" in d.find_element(By.ID, "events").text)
        events = browser.find_element(By.ID, "events")
        assert "run_ended" not in events.text
        assert ExecutionLog(log_path).entries("gate_wait") and not gate.exists()
        gate.touch()
        wait.until(lambda d: "timestep.run_ended completed" in events.text)
        lines = events.text.splitlines()
        offsets = [int(line.split(" ", 1)[0]) for line in lines if not line.startswith("-")]
        assert offsets == list(range(len(offsets)))  # each event once, in order
        assert '"one"' in events.text and '" five"' in events.text
        wait.until(lambda d: d.find_element(By.ID, "detail-badge").text == "completed")
        assert runner.wait(timeout=120) == 0
    finally:
        if runner is not None and runner.poll() is None:
            runner.kill()
            runner.wait()
        server.terminate()
        server.wait(timeout=30)


HOSTILE_RUN_IDS = ["..", ".", "a/b", "<img src=x onerror=\"document.title='pwned'\">\u202eid"]


def test_page_shows_hostile_text_as_data_and_reaches_every_run_id(
    browser: Any, tmp_path: Path
) -> None:
    """Run ids and arguments a model could steer, in real Chromium: nothing runs, nothing is
    hidden or reordered (escapes are shown), and every run can be opened and approved."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.apps.mail_app import HOSTILE_BODY, HOSTILE_TO
    from timestep.cli.safe import visible

    database_url = f"sqlite:///{tmp_path}/timestep.sqlite"
    env = env_for(database_url, tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    for run_id in HOSTILE_RUN_IDS:
        parked = cli(env, "run", "tests.apps.mail_app:hostile_mailer", "mail", "--run-id", run_id)
        assert parked.returncode == 3, parked.stderr
    server, url = start_serve(env, "--token", TOKEN)
    worker = None
    try:
        worker = start_worker(env, "tests.apps.mail_app")
        wait = WebDriverWait(browser, 60)
        browser.get(f"{url}#token={TOKEN}")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pending .run")) == 4)
        shown_ids = browser.execute_script(
            "return Array.from(document.querySelectorAll('#pending .run'), (r) => r.dataset.runId)"
        )
        assert sorted(shown_ids) == sorted(HOSTILE_RUN_IDS)
        arguments = json.dumps({"to": HOSTILE_TO, "body": HOSTILE_BODY}, separators=(",", ":"))
        for index, run_id in enumerate(HOSTILE_RUN_IDS):
            # Found once and clicked: the live view updates rows in place, so it stays valid.
            [row] = [
                r
                for r in browser.find_elements(By.CSS_SELECTOR, "#pending .run")
                if r.get_attribute("data-run-id") == run_id
            ]
            row_text = row.text
            row.click()
            assert visible(run_id) in row_text and "\u202e" not in row_text
            wait.until(
                lambda d, run_id=run_id: (
                    d.find_element(By.ID, "detail-title").text == visible(run_id)
                    and d.find_elements(By.CSS_SELECTOR, ".call.open button.approve")
                )
            )
            shown = browser.find_element(By.CSS_SELECTOR, ".call pre.arguments").text
            # Exactly the arguments the tool receives, indented, the invisible parts visible.
            assert shown == pretty(arguments)
            assert "\\u202eexe.txt" in shown and "<script>" in shown and "[conceal]" in shown
            if index == 0:  # the "approve always" key
                browser.find_element(By.TAG_NAME, "body").send_keys("A")
            else:
                browser.find_element(By.CSS_SELECTOR, ".call.open button.approve").click()
            wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".call.open"))
            assert not browser.find_element(By.ID, "error").is_displayed()
        for run_id in HOSTILE_RUN_IDS:
            wait_for_status(database_url, run_id, "completed")
        # Nothing a model wrote ran as markup or script on the page.
        wait.until(lambda d: d.title == "Timestep approvals")
        assert browser.find_elements(By.TAG_NAME, "img") == []
        assert len(browser.find_elements(By.TAG_NAME, "script")) == 1  # the page's own
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert
    finally:
        if worker is not None:
            code, err = stop(worker)
            assert code == 0, err
        server.terminate()
        server.wait(timeout=30)
    sent = ExecutionLog(tmp_path / "log.jsonl").entries("tool")
    assert [e["to"] for e in sent if e["name"] == "send_email"] == [HOSTILE_TO] * 4
