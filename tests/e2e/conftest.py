"""Browser tests: a real daphne (websockets need ASGI) and headless Debian Chromium.

They run on the SQLite file in the server's own ALCHEMY_HOME whatever DATABASE_URL the
test run has: the server, the seeding and the writer are separate processes that must
share one committed database, and a per-run PostgreSQL database would need creating and
dropping outside pytest-django's test-database machinery.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e import servers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def server_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("e2e-home")
    home.chmod(0o700)
    return home


@pytest.fixture(scope="module")
def live_server_url(server_home):
    servers.migrate(server_home)
    with servers.daphne(server_home) as base:
        yield base


@pytest.fixture(scope="module")
def seeded_eval(server_home, live_server_url) -> str:
    return servers.seed_eval(server_home, tests=60)


# Module scope: Playwright's sync API keeps an event loop running in this thread while
# it lives, which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


# A laptop screen: what the pages must be usable on.
VIEWPORT = {"width": 1366, "height": 768}

# Test-only instrumentation, injected before any page script: every WebSocket the page
# opens (to drop one), a count of the messages they deliver, and each text the live
# state indicator shows.
SOCKET_PROBE = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = []; window.__wsMessages = 0; window.__liveStates = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener("message", () => { window.__wsMessages += 1; });
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.querySelector("[data-live-state]");
    if (!el) return;
    new MutationObserver(() => window.__liveStates.push(el.textContent))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
})();
"""


def log_in(context, base: str):
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", servers.PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


@pytest.fixture
def page(browser, live_server_url, seeded_eval):
    """A logged-in page (through the real login form)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(SOCKET_PROBE)
    yield log_in(context, live_server_url)
    context.close()


@pytest.fixture
def page_without_js(browser, live_server_url, seeded_eval):
    """A logged-in page in a browser with JavaScript turned off."""
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    yield log_in(context, live_server_url)
    context.close()
