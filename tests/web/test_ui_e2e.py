"""The web UI end to end, in Debian's chromium against a real server and SMTP server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from iiot.runtime import Runtime
from tests.fixtures.factories import PASSWORD, Factory
from tests.fixtures.tls import tls_context
from tests.mail.smtp_server import Inbox, accept_token
from tests.web.browser import shot

MEMBER_PASSWORD = "member-password-123"

# Imported lazily so that collecting the suite needs no browser tooling (the `browser` fixture
# says what is missing); assertions wait up to 10 s.
pw = pytest.importorskip("playwright.async_api")
expect = pw.expect
expect.set_options(timeout=10_000)


CSP_ERRORS: list[str] = []


def _watch_csp(message: Any) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        CSP_ERRORS.append(message.text)


async def sign_in(context: Any, base: str, email: str, password: str) -> Any:
    page = await context.new_page()
    page.on("console", _watch_csp)
    page.set_default_timeout(10_000)
    await page.goto(base + "/")
    await expect(page).to_have_url(re.compile(r"/signin"))
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, verify=tls_context()) as client:
        yield client


async def ingest(api: httpx.AsyncClient, token: str, values: dict[str, float]) -> None:
    r = await api.post(
        "/api/v1/telemetry",
        headers={"X-API-Key": token},
        json={"timestamp": datetime.now(UTC).isoformat(), "telemetry": values},
    )
    assert r.status_code == 201, r.text


async def test_sign_in_to_acknowledged_alert(
    browser: Any,
    live_server: str,
    api: httpx.AsyncClient,
    factory: Factory,
    runtime: Runtime,
    smtp_inbox: Inbox,
) -> None:
    base = live_server
    acme = await factory.tenant(name="Acme Plant")
    second = await factory.tenant(name="Second Site")
    other = await factory.tenant(name="Other Corp")
    admin = await factory.user(full_name="Ada Admin")
    await factory.membership(second, admin, "admin")
    await factory.membership(acme, admin, "admin")
    viewer = await factory.user()
    await factory.membership(acme, viewer, "viewer")
    outsider = await factory.user()
    await factory.membership(other, outsider, "admin")

    # The admin signs in and switches to Acme Plant.
    admin_ctx = await browser.new_context()
    page = await sign_in(admin_ctx, base, admin.email, PASSWORD)
    switcher = page.get_by_label("Active tenant")
    if "Acme Plant" in await switcher.locator("option:checked").inner_text():
        await switcher.select_option(label="Second Site (admin)")
        await expect(page.locator(".brand")).to_have_text("Second Site")
    await switcher.select_option(label="Acme Plant (admin)")
    await expect(page.locator(".brand")).to_have_text("Acme Plant")
    await expect(page.get_by_text("Devices", exact=True).first).to_be_visible()
    await shot(page, "dashboard")

    # Invite a developer; the e-mail arrives; the invitation is accepted on its page.
    await page.get_by_role("link", name="Members").click()
    member_email = f"new-member-{acme.id.hex[:6]}@example.com"
    await page.get_by_label("E-mail to invite").fill(member_email)
    await page.get_by_label("Role", exact=True).select_option("developer")
    await page.get_by_role("button", name="Invite").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {member_email}")
    await expect(page.get_by_text("invitation pending")).to_be_visible()
    await shot(page, "members")
    (message,) = await smtp_inbox.wait_for(1)
    token = accept_token(message)
    accept = await admin_ctx.new_page()
    await accept.goto(f"{base}/invitations/accept?token={token}")
    await accept.get_by_label("Password").fill(MEMBER_PASSWORD)
    await accept.get_by_role("button", name="Accept invitation").click()
    await expect(accept.get_by_role("status")).to_contain_text("Acme Plant")
    # Closed, the admin's page is in front again: a page behind another is not painted, and
    # every action on it then waits for frames that do not come.
    await accept.close()

    # The member signs in and creates a device; its token is shown once.
    member_ctx = await browser.new_context()
    mpage = await sign_in(member_ctx, base, member_email, MEMBER_PASSWORD)
    await mpage.get_by_role("link", name="Devices").click()
    await mpage.get_by_role("link", name="New device").click()
    await mpage.get_by_label("Name").fill("Boiler 7")
    await mpage.get_by_label("Type").fill("boiler")
    await mpage.get_by_role("button", name="Create device").click()
    device_token = await mpage.get_by_test_id("device-token").inner_text()
    await expect(mpage.get_by_role("button", name="Copy curl example")).to_be_visible()
    await shot(mpage, "device-created")
    await mpage.get_by_role("link", name="Open the device").click()
    await expect(mpage.get_by_role("heading", name="Boiler 7")).to_be_visible()
    await expect(mpage.get_by_role("status").filter(has_text="Live")).to_have_text("Live")
    device_url = mpage.url

    # Telemetry arrives: latest values and the chart update live, without a reload.
    await ingest(api, device_token, {"temperature": 21.5})
    await expect(mpage.get_by_test_id("latest-values")).to_contain_text("21.5")
    chart = mpage.get_by_test_id("device-chart").locator(".chart")
    await expect(chart).to_have_attribute("data-points", "1")
    await ingest(api, device_token, {"temperature": 23.25})
    await expect(chart).to_have_attribute("data-points", "2")
    await expect(mpage.get_by_test_id("latest-values")).to_contain_text("23.25")
    await shot(mpage, "device")

    # A threshold rule, made in the form.
    await mpage.get_by_role("link", name="Rules").click()
    await mpage.get_by_role("link", name="New rule").click()
    await mpage.get_by_label("Name").fill("Boiler too hot")
    await mpage.get_by_label("Key", exact=True).fill("temperature")
    await mpage.get_by_label("Value", exact=True).fill("80")
    await mpage.get_by_label("Severity").select_option("high")
    await shot(mpage, "rule-form")
    await mpage.get_by_role("button", name="Save rule").click()
    await expect(mpage.get_by_role("cell", name="Boiler too hot", exact=True)).to_be_visible()
    await shot(mpage, "rules")

    # The open alerts page is showing when the hot reading comes in; the alert appears live.
    await mpage.get_by_role("link", name="Alerts").click()
    await expect(mpage.get_by_role("status").filter(has_text="Live")).to_have_text("Live")
    await expect(mpage.get_by_test_id("alert-rows")).to_contain_text("No alerts.")
    await ingest(api, device_token, {"temperature": 95.0})
    await expect(mpage.get_by_test_id("alert-rows")).to_contain_text("Boiler 7")
    await shot(mpage, "alerts")
    await mpage.get_by_test_id("alert-rows").get_by_role("link").first.click()
    await mpage.get_by_label("Notes").fill("on my way")
    await mpage.get_by_role("button", name="Acknowledge").click()
    await expect(mpage.get_by_test_id("alert-state")).to_have_text("acknowledged")
    await expect(mpage.locator(".history")).to_contain_text("on my way")
    await shot(mpage, "alert")

    # A viewer of the same tenant sees the device and the alert, but no write controls.
    viewer_ctx = await browser.new_context()
    vpage = await sign_in(viewer_ctx, base, viewer.email, PASSWORD)
    await vpage.get_by_role("link", name="Devices").click()
    await expect(vpage.get_by_role("link", name="Boiler 7")).to_be_visible()
    await expect(vpage.get_by_role("link", name="New device")).to_have_count(0)
    await vpage.goto(device_url)
    await expect(vpage.get_by_role("heading", name="Boiler 7")).to_be_visible()
    for name in ("Edit device", "Rotate credentials", "Delete device"):
        await expect(vpage.get_by_role("button", name=name)).to_have_count(0)
    await vpage.get_by_role("link", name="Alerts").click()
    await vpage.get_by_label("State").select_option("acknowledged")
    await vpage.get_by_test_id("alert-rows").get_by_role("link").first.click()
    await expect(vpage.get_by_test_id("alert-state")).to_have_text("acknowledged")
    await expect(vpage.get_by_role("button", name="Resolve")).to_have_count(0)
    await expect(vpage.get_by_role("link", name="Members")).to_have_count(0)
    # Done with: a context that stays open keeps its renderer process running.
    await viewer_ctx.close()

    # A member of another tenant opening the device's address gets "not found".
    outsider_ctx = await browser.new_context()
    opage = await sign_in(outsider_ctx, base, outsider.email, PASSWORD)
    await opage.goto(device_url)
    await expect(opage.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(opage.get_by_text("Boiler 7")).to_have_count(0)
    await shot(opage, "not-found")
    await outsider_ctx.close()

    # The admin's pages, for the record: settings, API keys, audit trail.
    for link, heading, name in (
        ("Settings", "Tenant settings", "settings"),
        ("API keys", "API keys", "api-keys"),
        ("Audit trail", "Audit trail", "audit"),
        ("Dashboard", "Dashboard", "dashboard-with-data"),
    ):
        await page.get_by_role("link", name=link).click()
        await expect(page.get_by_role("heading", name=heading)).to_be_visible()
        await shot(page, name)

    # The API docs render offline from local assets under their CSP.
    docs = await admin_ctx.new_page()
    docs.on("console", _watch_csp)
    await docs.goto(base + "/docs")
    await expect(docs.get_by_text("/api/v1/auth/login").first).to_be_visible()
    await shot(docs, "docs")
    await docs.close()
    assert CSP_ERRORS == []

    # Signing out ends the session: a reload lands on the sign-in page.
    await mpage.get_by_role("button", name="Sign out").click()
    await expect(mpage.get_by_role("heading", name="Sign in to iiot")).to_be_visible()
    await mpage.reload()
    await expect(mpage.get_by_role("heading", name="Sign in to iiot")).to_be_visible()
    await shot(mpage, "signin")
    for ctx in (admin_ctx, member_ctx):
        await ctx.close()
