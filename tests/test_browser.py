"""The documentation pages and the back office, in a real browser: Debian's Chromium
(/usr/bin/chromium) driven by Playwright, headless, against the production server
(`scripts/serve.sh`, as `make serve` runs it) on loopback with the demo data.

The browser may reach nothing beyond the server: every other request is refused and
recorded, and the pages must work without it (Swagger UI, Redoc, the admin's maps,
whose tiles are refused). Every tab records the Content-Security-Policy's violations
(`securitypolicyviolation` events): none may happen. Screenshots go to tests/screenshots/
(not committed; BROWSER_SCREENSHOTS names another folder)."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from . import images
from .live import ROOT, LiveServer, live_database, server_environment, sql

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", ROOT / "tests" / "screenshots"))
CATALOGUE = ROOT / "signalements" / "locale" / "fr" / "LC_MESSAGES" / "django.po"
PASSWORD = "signalements"  # the demo accounts' (load_demo_data)
# A laptop's screen: the report list must fit it.
VIEWPORT = {"width": 1366, "height": 900}
# Each page reports what its Content-Security-Policy refused, to the test (`csp_violation`).
# The admin where the server is told to serve it (ADMIN_URL): not at /admin/, where
# nothing is, so that a link written rather than reversed fails.
ADMIN = "/back-office/"
LISTEN_TO_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations = (window.cspViolations || 0) + 1;
  window.csp_violation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} on ${location.pathname}`
  );
});
"""

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); CI installs it",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The production server with the demo data, and its database's URL."""
    with live_database("sqlite", tmp_path_factory.mktemp("browser")) as url:
        env = server_environment(url, ADMIN_URL=ADMIN)
        for command in (["load_demo_data"], ["collectstatic", "--noinput", "-v0"]):
            subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
        live = LiveServer(url, workers=1, ADMIN_URL=ADMIN)
        try:
            yield live, url
        finally:
            live.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


class Page:
    """A browser tab on the live server in one language, recording every request that
    tried to leave the server (refused)."""

    def __init__(self, browser, base_url: str, language: str, name: str):
        self.base_url = base_url
        self.name = name
        self.context = browser.new_context(
            viewport=VIEWPORT, locale=language, accept_downloads=True
        )
        self.context.set_default_timeout(15_000)
        self.elsewhere: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.violations: list[str] = []
        self.context.expose_function("csp_violation", self._violation)
        self.context.add_init_script(LISTEN_TO_CSP_VIOLATIONS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _only_loopback(self, route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            route.abort()

    def _violation(self, description: str) -> None:
        self.violations.append(description)

    def goto(self, path: str):
        response = self.page.goto(self.base_url + path)
        assert response.status < 400, (path, response.status)
        return self.page

    def screenshot(self, label: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{self.name}-{label}.png", full_page=True)

    def login(self, username: str) -> None:
        page = self.goto(ADMIN + "login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#dashboard")

    def close(self):
        self.context.close()


@pytest.fixture
def tab(request, browser, server):
    live, _ = server
    opened = []

    def open_tab(language="fr-FR"):
        name = f"{request.node.name}-{len(opened)}"
        page = Page(browser, f"http://127.0.0.1:{live.port}", language, name)
        opened.append(page)
        return page

    yield open_tab
    for page in opened:
        assert page.errors == [], page.errors
        assert page.violations == [], page.violations
        page.close()


def test_swagger_ui_renders_and_tries_the_list_without_network(tab):
    browser = tab()
    page = browser.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .information-container .title")
    operation = page.locator("#operations-signalements-signalements_list")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table .response-col_description pre").first
    assert '"results"' in body.inner_text()
    browser.screenshot("swagger")
    assert browser.elsewhere == []


def test_redoc_renders_without_network(tab):
    browser = tab()
    page = browser.goto("/api/redoc/")
    page.wait_for_selector("h1")
    page.get_by_text("/api/signalements/", exact=False).first.wait_for()
    assert "Signalements" in page.locator("h1").first.inner_text()
    browser.screenshot("redoc")
    assert browser.elsewhere == []


def _report_with_photo(live) -> dict:
    """A new report in the street-lighting category, with a photo, through the API."""
    status, _, created = live.request(
        "POST",
        "/api/signalements/",
        {
            "title": "Lampadaire éteint devant l'école",
            "description": "Le lampadaire devant l'école est éteint depuis lundi.",
            "date": "2025-04-29T16:30:00+02:00",
            "category": "eclairage-public",
            "latitude": 48.1119,
            "longitude": -1.6809,
            "extra": {"lamp_state": "off"},
        },
    )
    assert status == 201, created
    boundary = "signalements-browser-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
            f'filename="lampe.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + images.jpeg_with_gps()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = live.connection()
    connection.request(
        "POST",
        f"/api/signalements/{created['id']}/attachments/",
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Reporter-Token": created["reporter_token"],
            "Accept": "application/json",
        },
    )
    response = connection.getresponse()
    assert response.status == 201, response.read()
    connection.close()
    return created


def test_an_agent_triages_a_report_from_its_page(tab, server):
    live, database = server
    created = _report_with_photo(live)
    browser = tab()
    browser.login("agent")
    page = browser.page

    # The dashboard's figures.
    open_count = page.locator("[data-figure=open] .sig-card-count").inner_text()
    assert int(open_count) >= 1
    assert page.locator("#dashboard-status tr").count() == 5
    assert page.locator("#dashboard-weeks svg rect").count() == 12
    browser.screenshot("dashboard")

    # The list fits the screen; filter by status, then by category.
    page.click("tr.model-signalement th a")
    page.wait_for_selector("#result_list")
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    results = "document.querySelector('#changelist .results')"
    assert page.evaluate(f"{results}.scrollWidth <= {results}.clientWidth"), "the list overflows"
    page.locator("#changelist-filter a[href*='status__exact=new']").first.click()
    page.wait_for_selector("#result_list")
    category = page.locator("#changelist-filter a", has_text="Éclairage public").first
    category.click()
    page.wait_for_selector("#result_list")
    assert "status__exact=new" in page.url and "category__id__exact=" in page.url
    page.locator("#changelist-map-panel summary").click()
    page.wait_for_selector("#changelist-map.leaflet-container")
    browser.screenshot("list")

    # The report's page: acknowledge it with a note, add an internal note.
    page.locator("#result_list a", has_text=created["reference"]).first.click()
    page.wait_for_selector("#report-panel")
    assert page.locator("#current-status").inner_text() == "Nouveau"
    page.wait_for_selector("#report-map.leaflet-container")
    assert page.locator("#report-coordinates").inner_text().startswith("48.1119, -1.6809")
    assert page.locator(".field-preview img").count() == 1  # the photo's thumbnail
    page.fill("#transition-note", "Une équipe passe demain matin.")
    with page.expect_navigation():
        page.click("button[data-status=acknowledged]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#current-status").inner_text() == "Pris en compte"
    page.fill("#note-body", "Lampe à commander au fournisseur.")
    with page.expect_navigation():
        page.click("#add-note-button")
    page.wait_for_selector(".messagelist .success")
    history = page.locator("#report-history tbody tr")
    assert history.count() >= 2
    assert "Pris en compte" in history.first.inner_text()
    browser.screenshot("report")

    rows = sql(
        database,
        "SELECT body, is_internal FROM signalements_comment c "
        f"WHERE c.signalement_id = {created['id']} ORDER BY c.id",
    )
    assert [(body, bool(internal)) for body, internal in rows] == [
        ("Une équipe passe demain matin.", False),
        ("Lampe à commander au fournisseur.", True),
    ]
    assert sql(
        database, f"SELECT status FROM signalements_signalement WHERE id = {created['id']}"
    ) == [("acknowledged",)]

    # Export the list to CSV.
    page.goto(browser.base_url + ADMIN + "signalements/signalement/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "export_csv")
    with page.expect_download() as download:
        page.click("button[name=index]")
    content = Path(download.value.path()).read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(content)))
    assert len(table) >= 2 and created["reference"] in content
    assert browser.elsewhere == [] or all(
        "tile.openstreetmap.org" in url for url in browser.elsewhere
    )


def _catalogue() -> dict[str, str]:
    """Our French catalogue, read from the committed .po: English source → French ("" when
    untranslated), contexts dropped, without plurals and messages with placeholders."""
    found, entry, key = {}, {}, None
    for line in [*CATALOGUE.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if line.startswith(("msgid ", "msgstr ", "msgctxt ", "msgid_plural ", "msgstr[")):
            key, _, text = line.partition(" ")
            entry[key] = json.loads(text)
        elif line.startswith('"') and key:
            entry[key] += json.loads(line)
        elif not line and entry:
            source = entry.get("msgid", "")
            if source and "msgid_plural" not in entry and not re.search(r"%|\{", source):
                found[source] = entry.get("msgstr", "")
            entry, key = {}, None
    return found


# Text nodes and the attributes people read (placeholders, titles, button values).
VISIBLE_TEXTS = """
() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !["SCRIPT", "STYLE"].includes(parent.tagName)) {
      const text = walker.currentNode.textContent.trim();
      if (text) found.push(text);
    }
  }
  for (const element of document.querySelectorAll("[placeholder],[title],[aria-label],input[type=submit]")) {
    for (const name of ["placeholder", "title", "aria-label", "value"]) {
      const value = element.getAttribute(name);
      if (value && (name !== "value" || element.type === "submit")) found.push(value.trim());
    }
  }
  return found;
}
"""


@pytest.mark.parametrize("language", ["fr-FR", "en-GB"])
def test_the_admin_shows_no_untranslated_string_of_ours(tab, server, language):
    catalogue = _catalogue()
    # In French, no English source of ours may show; in English, no French translation.
    # (A word the same in both languages, "Public" say, is neither.)
    english = {source.casefold() for source in catalogue}
    french = {translation.casefold() for translation in catalogue.values() if translation}
    if language.startswith("fr"):
        unwanted = {source for source in catalogue if source.casefold() not in french}
    else:
        unwanted = {t for t in catalogue.values() if t.casefold() not in english}
    assert len(unwanted) > 100  # the catalogue was read
    live, _ = server
    browser = tab(language)
    browser.login("admin")
    _, _, listed = live.request("GET", "/api/signalements/?page_size=1")
    report_id = listed["results"][0]["id"]
    pages = {
        "dashboard": ADMIN,
        "list": ADMIN + "signalements/signalement/?map=1",
        "report": ADMIN + f"signalements/signalement/{report_id}/change/",
        "category": ADMIN + "signalements/category/",
        "category-page": ADMIN
        + "signalements/category/"
        + str(
            sql(
                server[1],
                "SELECT id FROM signalements_category WHERE code = 'eclairage-public'",
            )[0][0]
        )
        + "/change/",
        "api-keys": ADMIN + "signalements/apikey/",
        "history": ADMIN + f"signalements/signalement/{report_id}/history/",
        "webhook-endpoint": ADMIN + "signalements/webhookendpoint/add/",
        "webhook-deliveries": ADMIN + "signalements/webhookdelivery/",
    }
    problems = {}
    for name, path in pages.items():
        page = browser.goto(path)
        texts = page.evaluate(VISIBLE_TEXTS)
        shown = sorted({text for text in texts if text in unwanted})
        if shown:
            problems[name] = shown
        browser.screenshot(f"{name}-{language}")
    assert problems == {}, problems


def test_no_page_breaks_its_content_security_policy(tab, server):
    """The admin's pages (the dashboard, the list with its map, a report's page with its
    map, an area's map), the documentation pages and DRF's pages load and run under
    the policy without one refusal (the `tab` fixture asserts that at the end)."""
    live, database = server
    browser = tab()
    page = browser.page
    # The listener hears what the policy refuses: an inline script, say.
    browser.goto("/api/redoc/")
    page.evaluate(
        "const script = document.createElement('script');"
        "script.text = 'window.injected = true';"
        "document.head.appendChild(script);"
    )
    page.wait_for_function("() => window.cspViolations === 1")
    assert page.evaluate("window.injected") is None
    assert browser.violations == ["script-src-elem refused inline on /api/redoc/"]
    browser.violations.clear()

    page = browser.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .information-container .title")
    page.locator("#operations-signalements-signalements_list .opblock-summary").click()
    page = browser.goto("/api/redoc/")
    page.get_by_text("/api/signalements/", exact=False).first.wait_for()
    browser.goto("/api/signalements/?format=api")

    browser.login("admin")
    report_id = sql(
        database, "SELECT max(id) FROM signalements_signalement WHERE latitude IS NOT NULL"
    )[0][0]
    area_id = sql(database, "SELECT min(id) FROM signalements_area")[0][0]
    pages = {
        ADMIN: "#dashboard",
        ADMIN + "signalements/signalement/": "#changelist-map-panel summary",
        ADMIN + f"signalements/signalement/{report_id}/change/": "#report-map.leaflet-container",
        ADMIN + "signalements/category/add/": "#category_form",
        ADMIN + f"signalements/area/{area_id}/change/": "#area-map.leaflet-container",
    }
    for path, shown in pages.items():
        response = page.goto(browser.base_url + path)
        assert response.status == 200, path
        policy = response.header_value("content-security-policy")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        page.wait_for_selector(shown)
        if shown.endswith("summary"):  # the list's map, drawn once opened
            page.click(shown)
            page.wait_for_selector("#changelist-map.leaflet-container")
        page.wait_for_load_state("networkidle")
    assert browser.violations == []
