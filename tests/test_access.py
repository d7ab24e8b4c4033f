"""Access by token role (issue 7 item 4; docs/web.md): admin, crew and read tokens.

admin (BAUHOF_API_TOKENS) may do everything; crew (BAUHOF_CREW_TOKENS) marks stops done or
undone and acknowledges alerts; read (BAUHOF_READ_TOKENS) only reads. While read tokens are
configured every GET under /api/v1 needs one of the three; without them reading stays open.
Pages, static files, /health and /metrics never need a token. Nothing records who: a stop is
done "by the crew", whichever crew token said so.
"""
from __future__ import annotations

import psycopg
import pytest
from pydantic import ValidationError

from app.config import Settings
from fixtures_data import DATA
from helpers import SECRET, TOKEN, running_service
from test_plans import bauhof, planner_config  # noqa: F401  (fixtures)

ADMIN = TOKEN
CREW = "crew-token-fzg-1-0123456789"
READ = "read-token-grafana-0123456789"
WRONG = "wrong-token-0123456789abcdef"


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _first_stop(client) -> dict:
    routes = client.get("/api/v1/routes", headers=auth(ADMIN)).json()
    return next(s for p in routes["plans"] for s in p["stops"])


def _plan(client, token):
    return client.post("/api/v1/routes/plan", headers=auth(token),
                       json={"kind": "collection", "time_limit_s": 1})


def test_role_matrix(db, bauhof, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="", alert_interval_s=0,
                         crew_tokens=[CREW], read_tokens=[READ]) as (service, client):
        assert _plan(client, ADMIN).status_code == 200
        stop = _first_stop(client)
        url = f"/api/v1/routes/{stop['plan_id']}/stops/{stop['seq']}"

        # Reads: any of the three roles, nothing else, while read tokens are configured.
        for path in ("/api/v1/routes", "/api/v1/devices", "/api/v1/latest",
                     "/api/v1/bins/forecast", "/api/v1/alerts", "/api/v1/ingest-errors"):
            for token in (None, WRONG):
                answer = client.get(path, headers=auth(token))
                assert answer.status_code == 401, (path, token, answer.text)
                assert answer.headers["WWW-Authenticate"] == "Bearer"
            for token in (READ, CREW, ADMIN):
                assert client.get(path, headers=auth(token)).status_code == 200, (path, token)
        # Not data: pages, their files, health and metrics stay open.
        for path in ("/tagesroute", "/uebersicht", "/static/app.css", "/health/live",
                     "/metrics", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        # Writes with their own credentials are not reads: the webhook keeps its secret.
        hook = client.post("/api/v1/webhooks/tts", headers={"X-Webhook-Secret": SECRET},
                           content=(DATA / "examples" / "tts_uplink_decoded.json").read_bytes())
        assert hook.status_code < 300, hook.text

        # Marking stops: crew and admin; a read token is known but may not (403).
        done = {"status": "done"}
        assert client.patch(url, json=done).status_code == 401
        assert client.patch(url, json=done, headers=auth(WRONG)).status_code == 401
        refused = client.patch(url, json=done, headers=auth(READ))
        assert refused.status_code == 403 and "read token" in refused.json()["detail"]
        marked = client.patch(url, json=done, headers=auth(CREW))
        assert marked.status_code == 200, marked.text
        assert (marked.json()["status"], marked.json()["done_by"]) == ("done", "crew")
        undone = client.patch(url, json={"status": "planned"}, headers=auth(ADMIN))
        assert undone.status_code == 200 and undone.json()["done_by"] is None
        assert client.patch(url, json=done, headers=auth(ADMIN)).json()["done_by"] == "crew"

        # Acknowledging alerts: crew (an unknown alert is a 404 after the token passed).
        ack = "/api/v1/alerts/no-such-alert/acknowledge"
        assert client.post(ack, headers=auth(READ)).status_code == 403
        assert client.post(ack, headers=auth(CREW)).status_code == 404
        assert client.post(ack).status_code == 401

        # Everything else written: admin only.
        for token, expected in ((READ, 403), (CREW, 403)):
            assert _plan(client, token).status_code == expected
            assert client.put("/api/v1/devices/bin-new-001", json={"kind": "bin"},
                              headers=auth(token)).status_code == expected
        assert client.put("/api/v1/devices/bin-new-001", json={"kind": "bin"},
                          headers=auth(ADMIN)).status_code == 200
        assert client.get("/api/v1/ingest-errors", headers=auth(ADMIN)).status_code == 200
        forced = client.post("/api/v1/routes/plan", headers=auth(ADMIN),
                             json={"kind": "collection", "time_limit_s": 1, "force": True})
        assert forced.status_code == 200, forced.text

    # No token of any kind is stored with the work done.
    with psycopg.connect(db) as conn:
        rows = " ".join(r[0] for r in conn.execute(
            "SELECT row_to_json(s)::text FROM route_stops s UNION ALL"
            " SELECT row_to_json(p)::text FROM route_plans p"))
    assert all(token not in rows for token in (ADMIN, CREW, READ))


def test_reads_are_open_without_read_tokens(db, bauhof, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="", alert_interval_s=0,
                         crew_tokens=[CREW]) as (service, client):
        assert _plan(client, ADMIN).status_code == 200
        for path in ("/api/v1/routes", "/api/v1/devices", "/api/v1/bins/forecast"):
            assert client.get(path).status_code == 200, path
            # A token that is not known is still no reason to refuse an open read.
            assert client.get(path, headers=auth(WRONG)).status_code == 200, path
        stop = _first_stop(client)
        url = f"/api/v1/routes/{stop['plan_id']}/stops/{stop['seq']}"
        assert client.patch(url, json={"status": "done"}).status_code == 401
        assert client.patch(url, json={"status": "done"},
                            headers=auth(CREW)).status_code == 200


def test_crew_tokens_without_admin_tokens(db, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="", alert_interval_s=0,
                         api_tokens=[], crew_tokens=[CREW]) as (service, client):
        refused = _plan(client, CREW)
        assert refused.status_code == 403 and "BAUHOF_API_TOKENS" in refused.json()["detail"]
        # Passing the crew check: an unknown stop is a 404, not a 401/403.
        assert client.patch("/api/v1/routes/999999/stops/1", json={"status": "done"},
                            headers=auth(CREW)).status_code == 404
    with running_service(db, planner_config=planner_config, plan_at="", alert_interval_s=0,
                         api_tokens=[]) as (service, client):
        refused = client.patch("/api/v1/routes/1/stops/1", json={"status": "done"},
                               headers=auth(CREW))
        assert refused.status_code == 403
        assert "BAUHOF_CREW_TOKENS" in refused.json()["detail"]


def test_token_settings(monkeypatch):
    monkeypatch.setenv("BAUHOF_CREW_TOKENS", f"{CREW}, crew-token-fzg-2-0123456789")
    monkeypatch.setenv("BAUHOF_READ_TOKENS", f'["{READ}"]')
    settings = Settings()
    assert [t.get_secret_value() for t in settings.crew_tokens] == [
        CREW, "crew-token-fzg-2-0123456789"]
    assert [t.get_secret_value() for t in settings.read_tokens] == [READ]
    assert CREW not in repr(settings) and READ not in repr(settings)
    # Scrubbed from the logs like every other secret.
    assert {CREW, READ} <= set(settings.secret_values())
    for name in ("crew_tokens", "read_tokens"):
        with pytest.raises(ValidationError, match="at least 16"):
            Settings(**{name: ["short"]})


def test_a_token_in_two_lists_has_the_higher_role(db, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="", alert_interval_s=0,
                         api_tokens=[ADMIN], crew_tokens=[ADMIN, CREW],
                         read_tokens=[CREW]) as (service, client):
        assert client.put("/api/v1/devices/bin-x-001", json={"kind": "bin"},
                          headers=auth(ADMIN)).status_code == 200
        assert client.patch("/api/v1/routes/999999/stops/1", json={"status": "done"},
                            headers=auth(CREW)).status_code == 404
