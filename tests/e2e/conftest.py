"""Fixtures for the browser tests: one Gatehouse + Streamlit per test session.

The session starts the real `gatehouse` binary in front of `demo/app.py`,
with a fresh SQLite database holding one user, and drives it with Debian's
Chromium through Playwright. Every test gets its own browser context, so
cookies never leak from one test to the next.

Environment:
    GATEHOUSE_BIN      the binary to test (default: target/debug/gatehouse,
                       or $CARGO_TARGET_DIR/debug/gatehouse)
    E2E_CHROMIUM       the browser (default: /usr/bin/chromium)

Artifacts (under <repo>/artifacts/):
    gatehouse.log      everything Gatehouse and Streamlit printed
    screenshots/*.png  named screenshots, plus FAILED-<test>.png on failure
"""

from __future__ import annotations

import contextlib

import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
GATEHOUSE_LOG = ARTIFACTS / "gatehouse.log"
DEMO_APP = REPO / "demo" / "app.py"

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# A non-loopback name for 127.0.0.1, resolved inside the browser only.
PUBLIC_HOSTNAME = "gatehouse.test"
# Flags that let Debian's Chromium run headless in a container with no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Lets a test open Gatehouse under a non-loopback host name, the way users
    # reach a real deployment (Streamlit treats loopback origins specially).
    # Every *.test name is 127.0.0.1 (gatehouse.test here; test_oidc.py puts a
    # second Streamlit app on app-two.test so its cookies are its own).
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]

USERNAME = "alice"
EMAIL = "alice@example.com"
FULL_NAME = "Alice Example"
ROLE = "analyst"
PASSWORD = "correct horse battery staple"

# What Gatehouse's messages say they are from (checked on the SMTP side).
MAIL_FROM = "Gatehouse Demo <gatehouse@gatehouse.test>"
MAIL_REPLY_TO = "help@gatehouse.test"
MAIL_TIMEOUT_S = 15

HEALTH_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
# Streamlit renders in the browser after its WebSocket connects: be patient.
STREAMLIT_TIMEOUT_MS = 20_000

expect.set_options(timeout=STREAMLIT_TIMEOUT_MS)

# Whether this pytest run started Gatehouse (and so wrote GATEHOUSE_LOG).
_STATE = {"log_written": False}


def gatehouse_binary() -> Path:
    """The binary under test: $GATEHOUSE_BIN, else the cargo debug build."""
    explicit = os.environ.get("GATEHOUSE_BIN")
    if explicit:
        return Path(explicit).resolve()
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target_dir.is_absolute():
        target_dir = REPO / target_dir
    return target_dir / "debug" / "gatehouse"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_bin() -> Path:
    """The bin/ folder of the Python running pytest (holds `streamlit`)."""
    return Path(sys.prefix) / "bin"


def child_env(database_url: str) -> dict[str, str]:
    """Environment for Gatehouse: ours, minus any stray GATEHOUSE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["GATEHOUSE_DATABASE__URL"] = database_url
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    # Keep Streamlit quiet and offline.
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env.setdefault("RUST_BACKTRACE", "1")
    return env


def tail(path: Path, lines: int = 200) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Gatehouse:
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    binary: Path
    workdir: Path

    @property
    def public_base_url(self) -> str:
        """The same server, reached under a non-loopback host name."""
        return f"http://{PUBLIC_HOSTNAME}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            pytest.fail(
                f"gatehouse exited with code {code}; last lines of {GATEHOUSE_LOG}:\n"
                + tail(GATEHOUSE_LOG),
                pytrace=False,
            )


def _run_cli(binary: Path, args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> str:
    """Runs `gatehouse ARGS`, logs it, fails the test if it fails; returns what it printed on stdout."""
    result = subprocess.run(
        [str(binary), *args],
        input=stdin.encode(),
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with GATEHOUSE_LOG.open("ab") as log:
        log.write(f"$ gatehouse {' '.join(args)}\n".encode())
        log.write(result.stdout + result.stderr)
        log.write(f"(exit {result.returncode})\n".encode())
    if result.returncode != 0:
        pytest.fail(
            f"`gatehouse {' '.join(args)}` exited with {result.returncode}\n"
            f"stdout:\n{result.stdout.decode(errors='replace')}\n"
            f"stderr:\n{result.stderr.decode(errors='replace')}",
            pytrace=False,
        )
    return result.stdout.decode(errors="replace")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM Gatehouse, wait, then make sure nothing it started lives on.

    Gatehouse runs in its own process group (start_new_session), which its
    Streamlit child shares unless Gatehouse moves it; anything left in that
    group after Gatehouse has exited is killed and reported.
    """
    pgid = process.pid
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            message = f"gatehouse did not exit {STOP_TIMEOUT_S} s after SIGTERM; killing it"
            _note(message)
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        _note("processes started by gatehouse outlived it (child not stopped?); killing them")
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _note(message: str) -> None:
    """A warning from the test harness, in the log and on stderr."""
    print(f"e2e harness: {message}", file=sys.stderr)
    with GATEHOUSE_LOG.open("a") as log:
        log.write(f"e2e harness: {message}\n")


@dataclass
class Received:
    """One message as the SMTP server received it."""

    envelope_from: str
    envelope_to: list[str]
    message: email.message.EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "the message has no text/plain part"
        return part.get_content()

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "the message has no text/html part"
        return part.get_content()

    def code(self) -> str:
        match = re.search(r"\b(\d{6})\b", self.text)
        assert match, f"no 6-digit code in: {self.text}"
        return match.group(1)

    def link(self) -> str:
        match = re.search(r"(http://\S+\?\S+)", self.text)
        assert match, f"no link in: {self.text}"
        return match.group(1)


class Mailbox:
    """An aiosmtpd handler keeping every message Gatehouse sends over SMTP."""

    def __init__(self) -> None:
        self.port = 0
        self._messages: list[Received] = []
        self._taken: set[int] = set()
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self._messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def next(self, to: str, subject_contains: str = "") -> Received:
        """Waits for the next message to `to` (whose subject contains the text) not returned before."""
        deadline = time.monotonic() + MAIL_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                for index, received in enumerate(self._messages):
                    if index in self._taken or to not in received.envelope_to:
                        continue
                    if subject_contains not in str(received.message["Subject"]):
                        continue
                    self._taken.add(index)
                    return received
            time.sleep(0.05)
        pytest.fail(f"no mail to {to} with '{subject_contains}' in its subject within {MAIL_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) that Gatehouse sends its mail to."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[Gatehouse]:
    binary = gatehouse_binary()
    if not binary.is_file():
        pytest.fail(
            f"gatehouse binary not found at {binary}: run `cargo build` first "
            "or set GATEHOUSE_BIN",
            pytrace=False,
        )
    if not (venv_bin() / "streamlit").exists():
        pytest.fail(f"streamlit is not installed in {venv_bin()}", pytrace=False)

    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    GATEHOUSE_LOG.write_bytes(b"")
    _STATE["log_written"] = True

    # Run from a scratch folder so no gatehouse.toml or .streamlit/ of the
    # developer's is picked up, and anything Gatehouse writes stays there.
    workdir = tmp_path_factory.mktemp("gatehouse")
    database = workdir / "gatehouse.db"
    env = child_env(f"sqlite://{database}")
    # Open registration, with mail going over SMTP to the test's own server.
    env["GATEHOUSE_SIGNUP__MODE"] = "open"
    env["GATEHOUSE_MAIL__SMTP_URL"] = f"smtp://127.0.0.1:{mailbox.port}?tls=none"
    env["GATEHOUSE_MAIL__FROM"] = MAIL_FROM
    env["GATEHOUSE_MAIL__REPLY_TO"] = MAIL_REPLY_TO

    _run_cli(
        binary,
        ["users", "add", USERNAME, "--email", EMAIL, "--name", FULL_NAME,
         "--role", ROLE, "--password-stdin"],
        env,
        workdir,
        stdin=PASSWORD,
    )

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = GATEHOUSE_LOG.open("ab")
    log.write(f"$ gatehouse run --listen 127.0.0.1:{port} -- streamlit run {DEMO_APP}\n".encode())
    log.flush()
    process = subprocess.Popen(
        [str(binary), "run", "--listen", f"127.0.0.1:{port}", "--",
         "streamlit", "run", str(DEMO_APP)],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Gatehouse(base_url, port, process, env, binary, workdir)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)
        log.close()


@contextlib.contextmanager
def running_gatehouse(
    workdir: Path, env: dict[str, str], label: str, gatehouse_args: list[str] | None = None,
    app_command: list[str] | None = None,
) -> Iterator[Gatehouse]:
    """`gatehouse run [ARGS] -- streamlit run APP` of its own (the demo app unless `app_command` says
    otherwise), logged to the shared log under `label`, healthy when entered and stopped on exit."""
    ARTIFACTS.mkdir(exist_ok=True)
    if not _STATE["log_written"]:
        GATEHOUSE_LOG.write_bytes(b"")
        _STATE["log_written"] = True
    binary = gatehouse_binary()
    if not binary.is_file():
        pytest.fail(f"gatehouse binary not found at {binary}: run `cargo build` or set GATEHOUSE_BIN", pytrace=False)
    if not (venv_bin() / "streamlit").exists():
        pytest.fail(f"streamlit is not installed in {venv_bin()}", pytrace=False)
    port = free_port()
    command = [str(binary), "run", "--listen", f"127.0.0.1:{port}", *(gatehouse_args or []), "--",
               *(app_command or ["streamlit", "run", str(DEMO_APP)])]
    with GATEHOUSE_LOG.open("ab") as log:
        log.write(f"$ {' '.join(command[1:])}  ({label})\n".encode())
        log.flush()
        process = subprocess.Popen(
            command, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Gatehouse(f"http://127.0.0.1:{port}", port, process, env, binary, workdir)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)


def add_user(gatehouse: Gatehouse, username: str, email_address: str, name: str, password: str) -> None:
    """Creates a user through the CLI, against the running server's database."""
    _run_cli(
        gatehouse.binary,
        ["users", "add", username, "--email", email_address, "--name", name, "--password-stdin"],
        gatehouse.env,
        gatehouse.workdir,
        stdin=password,
    )


def run_cli(gatehouse: Gatehouse, args: list[str]) -> None:
    """Runs a `gatehouse` command against the running server's database; fails the test if it fails."""
    _run_cli(gatehouse.binary, args, gatehouse.env, gatehouse.workdir)


def _wait_healthy(server: Gatehouse) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        server.assert_running()
        try:
            response = requests.get(server.url("/_gatehouse/health"), timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as error:
            last = repr(error)
        time.sleep(0.25)
    pytest.fail(
        f"/_gatehouse/health did not answer 200 within {HEALTH_TIMEOUT_S} s "
        f"(last: {last}); last lines of {GATEHOUSE_LOG}:\n{tail(GATEHOUSE_LOG)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser, gatehouse: Gatehouse) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    gatehouse.assert_running()
    # Streamlit scrolls inside its own container, so full-page screenshots
    # show one viewport: make it tall enough for the whole demo page.
    context = browser.new_context(
        base_url=gatehouse.base_url, viewport={"width": 1280, "height": 1000}
    )
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=SCREENSHOTS / f"FAILED-{request.node.name}.png", full_page=True)
        except Exception as error:  # the page may be gone; the report matters more
            print(f"could not take a failure screenshot: {error}")


def device_context(browser: Browser, base_url: str, phone: bool = False) -> BrowserContext:
    """A fresh browser profile at desktop width, or as a phone (390 px wide, touch), for screenshots of both."""
    if phone:
        return browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844},
                                   is_mobile=True, has_touch=True)
    return browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """On any failure, show what Gatehouse and Streamlit printed."""
    if exitstatus == 0 or not _STATE["log_written"]:
        return
    terminalreporter.section(f"gatehouse log (last 200 lines of {GATEHOUSE_LOG})")
    terminalreporter.write_line(tail(GATEHOUSE_LOG))
