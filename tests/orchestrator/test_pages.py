"""The browser's files: the widget script for any site, the dashboard for human agents in every
environment, the demo page and its session in development only."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.settings import Settings
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import AUTH

STRONG = "p" * 40


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    """A built web directory, as `npm run build` leaves it."""
    (tmp_path / "widget").mkdir()
    (tmp_path / "widget" / "widget.js").write_text("console.log('widget');\n")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "index.html").write_text("<!doctype html><title>demo</title>\n")
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "index.html").write_text("<!doctype html><title>desk</title>\n")
    (tmp_path / "dashboard" / "dashboard.js").write_text("console.log('desk');\n")
    (tmp_path / "secret.txt").write_text("not for the web\n")
    return tmp_path


@pytest.fixture
def development(orchestrator_settings: Settings, web_dir: Path) -> Settings:
    return orchestrator_settings.model_copy(update={"web_dir": web_dir})


@pytest.fixture
def production(orchestrator_settings: Settings, web_dir: Path) -> Settings:
    return Settings(env="production", redis_url=orchestrator_settings.redis_url,
                    livekit_url=orchestrator_settings.livekit_url, livekit_api_key="APIlive1",
                    livekit_api_secret=STRONG, api_keys=STRONG, widget_secret=STRONG,
                    reconcile_interval=0, web_dir=web_dir)


async def test_the_widget_script_is_served_for_other_sites_to_embed(
        orchestrator_client_factory: OrchestratorClientFactory, production: Settings) -> None:
    async with orchestrator_client_factory(production) as client:
        response = await client.get("/widget/widget.js")

    assert response.status_code == 200
    assert response.text == "console.log('widget');\n"
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/widget/missing.js", "/widget/..%2Fsecret.txt",
                                  "/widget/%2E%2E/secret.txt", "/secret.txt"])
async def test_only_the_built_widget_files_are_served(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings,
        path: str) -> None:
    async with orchestrator_client_factory(development) as client:
        response = await client.get(path)

    assert response.status_code in (404, 422)
    assert "not for the web" not in response.text


async def test_the_demo_page_allows_scripts_from_here_and_connections_to_livekit(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings) -> None:
    async with orchestrator_client_factory(development) as client:
        response = await client.get("/demo/")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    policy = dict(part.strip().split(" ", 1)
                  for part in response.headers["content-security-policy"].split(";"))
    livekit = development.livekit_url.removeprefix("ws://")
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == f"'self' ws://{livekit} http://{livekit}"
    assert policy["frame-ancestors"] == "'none'"


async def test_the_dashboard_is_served_in_production_allowing_connections_to_livekit(
        orchestrator_client_factory: OrchestratorClientFactory, production: Settings) -> None:
    secure = production.model_copy(update={"livekit_url": "wss://livekit.example.com"})
    async with orchestrator_client_factory(secure) as client:
        bare = await client.get("/dashboard", follow_redirects=False)
        page = await client.get("/dashboard/")
        script = await client.get("/dashboard/dashboard.js")
        config = await client.get("/dashboard/config")

    assert bare.status_code == 308 and bare.headers["location"] == "/dashboard/"
    assert page.status_code == 200 and "<title>desk</title>" in page.text
    assert script.status_code == 200 and script.text == "console.log('desk');\n"
    policy = dict(part.strip().split(" ", 1)
                  for part in page.headers["content-security-policy"].split(";"))
    assert policy["connect-src"] == ("'self' wss://livekit.example.com "
                                     "https://livekit.example.com")
    assert policy["script-src"] == "'self'"
    assert page.headers["x-frame-options"] == "DENY"
    assert config.json() == {"offline_models": False}


@pytest.mark.parametrize("path", ["/dashboard/missing.js", "/dashboard/..%2Fsecret.txt",
                                  "/dashboard/%2E%2E/secret.txt"])
async def test_only_the_built_dashboard_files_are_served(
        orchestrator_client_factory: OrchestratorClientFactory, production: Settings,
        path: str) -> None:
    async with orchestrator_client_factory(production) as client:
        response = await client.get(path)

    assert response.status_code in (404, 422)
    assert "not for the web" not in response.text


async def test_the_dashboard_says_when_the_models_are_the_offline_demos(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings) -> None:
    offline = development.model_copy(update={"demo_offline": True})
    async with orchestrator_client_factory(offline) as client:
        config = await client.get("/dashboard/config")

    assert config.json() == {"offline_models": True}


@pytest.mark.parametrize(("method", "path"), [("GET", "/demo/"), ("POST", "/demo/session")])
async def test_the_demo_is_absent_in_production(
        orchestrator_client_factory: OrchestratorClientFactory, production: Settings,
        method: str, path: str) -> None:
    async with orchestrator_client_factory(production) as client:
        response = await client.request(method, path)

    assert response.status_code == 404


async def test_a_demo_session_is_a_conversation_and_its_widget_token(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings) -> None:
    async with orchestrator_client_factory(development) as client:
        session = (await client.post("/demo/session")).json()
        stream = await client.get(f"/v1/conversations/{session['conversation_id']}/events",
                                  headers={"Authorization": f"Bearer {session['token']}"})
        record = await client.get(f"/v1/conversations/{session['conversation_id']}",
                                  headers=AUTH)

    assert stream.status_code == 200
    assert record.json()["identity"]["subject"] == "demo-customer-1"
    assert session["offline_models"] is False


async def test_the_demo_session_continues_the_same_conversation_until_a_new_one_is_asked(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings) -> None:
    async with orchestrator_client_factory(development) as client:
        first = (await client.post("/demo/session")).json()
        reloaded = (await client.post("/demo/session")).json()
        fresh = (await client.post("/demo/session", json={"new": True})).json()

    assert reloaded["conversation_id"] == first["conversation_id"]
    assert fresh["conversation_id"] != first["conversation_id"]


async def test_sites_named_as_widget_origins_may_call_the_api_from_the_browser(
        orchestrator_client_factory: OrchestratorClientFactory, development: Settings) -> None:
    embedding = development.model_copy(update={"widget_origins": ("https://shop.example",)})
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    async with orchestrator_client_factory(embedding) as client:
        allowed = await client.options("/v1/conversations/c-1/messages",
                                       headers={"Origin": "https://shop.example", **preflight})
        other = await client.options("/v1/conversations/c-1/messages",
                                     headers={"Origin": "https://evil.example", **preflight})

    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in other.headers
