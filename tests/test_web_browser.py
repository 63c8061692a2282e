"""The inbox page in a real browser: headless Debian chromium, a real `timestep serve`, a worker.

Under CI a missing chromium/chromedriver (or selenium) is a failure, not a skip.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .components import unavailable
from .helpers import ExecutionLog
from .processes import (
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_approves_a_pending_call_and_the_worker_finishes(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
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
        worker = start_worker(env, "tests.apps.mail_app")
        wait = WebDriverWait(browser, 60)

        browser.get(url)
        wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "tr[data-run-id='page-1']"))
        assert "awaiting_approval" in row.text
        assert 'send_email({"to":"bob@example.com","body":"hi"})' in row.text
        row.click()

        call = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".call"))
        assert "send_email" in call.text
        arguments = call.find_element(By.CSS_SELECTOR, "pre.arguments").text
        assert arguments == '{"to":"bob@example.com","body":"hi"}'
        awaiting = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#conversation .entry"))
        assert awaiting.text.startswith("user: ")
        assert "awaits approval" in browser.find_element(By.ID, "conversation").text
        # The run was not started with stream=True: the events view says so.
        wait.until(lambda d: "stream=True" in d.find_element(By.ID, "events").text)
        call.find_element(By.CSS_SELECTOR, "button.approve").click()

        record = wait_for_status(database_url, "page-1", "completed")
        assert record["final_output"] == "mail handled"
        sent = ExecutionLog(tmp_path / "log.jsonl").entries("tool")
        assert [e["to"] for e in sent if e["name"] == "send_email"] == ["bob@example.com"]
        # The page's live refresh shows the finished run and its output.
        wait.until(
            lambda d: (
                d.find_element(By.ID, "detail-status").get_attribute("data-status") == "completed"
            )
        )
        assert browser.find_element(By.CSS_SELECTOR, ".final-output").text == "mail handled"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 4)
        assert "send_email" in browser.find_element(By.ID, "steps").text
        wait.until(lambda d: "← " in d.find_element(By.ID, "conversation").text)

        # The other run: reject its call with a message; the model is told the message.
        browser.find_element(By.CSS_SELECTOR, "tr[data-run-id='page-2']").click()
        wait.until(
            lambda d: (
                d.find_element(By.ID, "detail-title").text.startswith("page-2")
                and d.find_elements(By.CSS_SELECTOR, ".call button.reject")
            )
        )
        browser.find_element(By.CSS_SELECTOR, ".call input.message").send_keys("not today")
        browser.find_element(By.CSS_SELECTOR, ".call button.reject").click()
        wait_for_status(database_url, "page-2", "completed")
        models = ExecutionLog(tmp_path / "log.jsonl").entries("model")
        assert models[-1]["tool_outputs"] == ["bob@example.com", "not today"]
        sent = ExecutionLog(tmp_path / "log.jsonl").entries("tool")
        assert [e["to"] for e in sent if e["name"] == "send_email"] == ["bob@example.com"]
        assert browser.get_cookies() == []
        assert browser.find_element(By.ID, "error").text == ""
    finally:
        if worker is not None:
            code, err = stop(worker)
            assert code == 0, err
        server.terminate()
        output, _ = server.communicate(timeout=30)
    # The access log lists requests without headers: the token is in no log line...
    assert "GET /api/runs" in output and "POST /api/run/approve?id=page-1" in output
    assert "POST /api/run/reject?id=page-2" in output
    assert TOKEN not in output
    # ...and nowhere in the database.
    for path in tmp_path.glob("timestep.sqlite*"):
        assert TOKEN.encode() not in path.read_bytes()


def test_serve_generates_a_token_prints_it_once_and_logs_no_header(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path}/timestep.sqlite", tmp_path / "log.jsonl")
    env.pop("TIMESTEP_TOKEN", None)
    server, url = start_serve(env, "--access-log", capture=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("generated token (shown once): "), first
        token = first.split(": ", 1)[1].strip()
        assert len(token) >= 40
        assert httpx.get(url + "api/runs").status_code == 401
        answer = httpx.get(url + "api/runs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json() == {"runs": [], "next_offset": None}
        assert "set-cookie" not in answer.headers
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
    server, url = start_serve(env, "--token", TOKEN)
    runner = None
    try:
        runner = start_stream_app(env, database_url, log_path)
        wait = WebDriverWait(browser, 60)
        browser.get(f"{url}#token={TOKEN}")  # the link `timestep serve` prints
        assert "token" not in browser.current_url  # dropped from the address at once
        row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "tr[data-run-id='s-1']"))
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
        assert runner.wait(timeout=120) == 0
    finally:
        if runner is not None and runner.poll() is None:
            runner.kill()
            runner.wait()
        server.terminate()
        server.wait(timeout=30)


HOSTILE_RUN_IDS = ["..", ".", "a/b", "<img src=x onerror=\"document.title='pwned'\">\u202eid"]


def open_row(browser: Any, run_id: str) -> str:
    """Click the list's row of `run_id` and return the text it showed.

    The page redraws its list as it polls, so a row found a moment ago may be gone: find, read
    and click it again until one attempt sees the same element throughout."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(d: Any) -> str:
        [row] = [
            r
            for r in d.find_elements(By.CSS_SELECTOR, "tr.run")
            if r.get_attribute("data-run-id") == run_id
        ]
        text: str = row.text
        row.click()
        return text

    wait = WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,))
    return str(wait.until(attempt))


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
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.run")) == 4)
        shown_ids = browser.execute_script(
            "return Array.from(document.querySelectorAll('tr.run'), (r) => r.dataset.runId)"
        )
        assert sorted(shown_ids) == sorted(HOSTILE_RUN_IDS)
        arguments = json.dumps({"to": HOSTILE_TO, "body": HOSTILE_BODY}, separators=(",", ":"))
        for run_id in HOSTILE_RUN_IDS:
            row_text = open_row(browser, run_id)
            assert visible(run_id) in row_text and "\u202e" not in row_text
            wait.until(
                lambda d, run_id=run_id: (
                    d.find_element(By.ID, "detail-title").text.startswith(visible(run_id))
                    and d.find_elements(By.CSS_SELECTOR, ".call button.approve")
                )
            )
            shown = browser.find_element(By.CSS_SELECTOR, ".call pre.arguments").text
            # Exactly the arguments the tool receives, with the invisible parts made visible.
            assert shown == visible(arguments)
            assert "\\u202eexe.txt" in shown and "<script>" in shown and "[conceal]" in shown
            browser.find_element(By.CSS_SELECTOR, ".call button.approve").click()
            wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".call button.approve"))
            assert browser.find_element(By.ID, "error").text == ""
        for run_id in HOSTILE_RUN_IDS:
            wait_for_status(database_url, run_id, "completed")
        # Nothing a model wrote ran as markup or script on the page.
        assert browser.title == "Timestep approvals"
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
