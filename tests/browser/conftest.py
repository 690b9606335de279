"""Browser tests: the course in JupyterLab and the lecture demos in Voilà, in Debian's Chromium,
driven by Playwright (Python). Run them with `make test-browser`.

They are not part of `make test` (they need Chromium): this folder is collected only when it is
named on the command line (`pytest tests/browser`, or one of its files) or when
CNNLAB_BROWSER_TESTS=1.

Fixtures:
- `lab` (session): JupyterLab on a free port, serving a temporary copy of course/, with its own
  settings (the news and update toast off; notebooks rendered in JupyterLab's default windowing mode,
  as students see them), workspaces and runtime folders; `--allow-root` when running as root.
- `voila` (session): Voilà serving the copy's lecture_demos.ipynb as a dashboard, from the copy's
  folder, so that it reads course/voila.json as `make present` does.
- `browser` (session): one Chromium (executable CNNLAB_CHROMIUM, default /usr/bin/chromium) with a
  fresh user-data-dir; `page` (function): a new tab whose console errors and uncaught exceptions are
  recorded in `page.errors` (tests assert it is empty).
- `artifacts` (function): tests/browser/artifacts/<test>/, emptied before the test; when a test
  fails, a screenshot of its page, the browser console and the server logs are written there and
  the folder is named in the test report. It is removed when the test passes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from driver import ARTIFACTS, COURSE, HERE, new_page, save_failure_artifacts

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
# Playwright cannot download its own browser here: it drives Debian's, with these flags.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1300}  # room for the tallest demo (element screenshots)
SERVER_START_SECONDS = 120
LAB_SETTINGS = {
    # no "would you like news?" toast, no update check
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    # Notebooks keep JupyterLab's default windowing mode ("contentVisibility": cells far from the
    # viewport are in the page but not laid out), as students get it; the checks scroll to what they measure.
}


# --- collection: only on request -------------------------------------------------------------------
def _requested(config) -> bool:
    if os.environ.get("CNNLAB_BROWSER_TESTS") == "1":
        return True
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if HERE in Path(collection_path).resolve().parents and not _requested(config):
        return True
    return None


# --- artefacts on failure ----------------------------------------------------------------------------
def artifacts_folder(node) -> Path:
    return ARTIFACTS / re.sub(r"[^\w.-]+", "_", node.name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.failed and report.when in ("setup", "call") and "artifacts" in getattr(item, "fixturenames", ()):
        report.sections.append(("browser artefacts", f"screenshots and logs kept in {artifacts_folder(item)}"))
    return report


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture
def artifacts(request):
    folder = artifacts_folder(request.node)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    if not _failed(request):
        shutil.rmtree(folder, ignore_errors=True)
        if ARTIFACTS.exists() and not any(ARTIFACTS.iterdir()):
            ARTIFACTS.rmdir()


# --- servers -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter server in a subprocess: `base` URL, `token`, `log` file; `url(path)` adds the token."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict, port: int, token: str, log: Path):
        self.name, self.port, self.token, self.log = name, port, token, log
        self.base = f"http://127.0.0.1:{port}"
        self._log_file = open(log, "w")
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def url(self, path: str = "") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}" + (f"{sep}token={self.token}" if self.token else "")

    def wait_until_up(self, probe: str | None) -> None:
        """Until GET `probe` answers 200 (None: until the port accepts connections)."""
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                if probe is None:
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
                with urllib.request.urlopen(self.url(probe), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {SERVER_START_SECONDS} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


def _server_env(home: Path) -> dict:
    """Isolated Jupyter folders; the kernel draws with ipympl, as under `make lab`."""
    settings = home / "settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = dict(os.environ)
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_PLATFORM_DIRS="1", MPLBACKEND="module://ipympl.backend_nbagg", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def course_copy(tmp_path_factory) -> Path:
    """A temporary copy of course/ (the servers' root: what they write never touches the repository)."""
    copy = tmp_path_factory.mktemp("course") / "course"
    shutil.copytree(COURSE, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return copy


@pytest.fixture(scope="session")
def lab(course_copy, tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyter")
    port, token = free_port(), uuid.uuid4().hex
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={course_copy}", f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    server = Server("JupyterLab", argv, course_copy, _server_env(home), port, token, home / "jupyterlab.log")
    try:
        server.wait_until_up("api/status")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def voila(course_copy, tmp_path_factory):
    home = tmp_path_factory.mktemp("voila")
    port = free_port()
    argv = [sys.executable, "-m", "voila", "lecture_demos.ipynb", "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]
    server = Server("Voila", argv, course_copy, _server_env(home), port, "", home / "voila.log")
    try:
        server.wait_until_up(None)  # GET / would already run the notebook
        yield server
    finally:
        server.stop()


# --- the browser -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: install it (`apt-get install -y chromium`) "
                           "or point CNNLAB_CHROMIUM at it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("Playwright is not installed: .venv/bin/python -m pip install -e '.[browser]' "
                           "(or playwright and voila by hand)") from None

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        # The tests never reach the internet: a resource from elsewhere (Voilà's template asks a CDN
        # for Font Awesome) gets an empty answer, online or offline alike.
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.fulfill(status=200, body=""))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, artifacts, request):
    tab = new_page(browser)
    yield tab
    if _failed(request):
        servers = [request.getfixturevalue(name) for name in ("lab", "voila") if name in request.fixturenames]
        save_failure_artifacts(tab, artifacts, servers)
    tab.close()
