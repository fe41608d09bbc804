"""Signing in to the console: the session token, the cookie, CSRF, signing out and revocation."""
from __future__ import annotations

from registry.auth import SYSTEM
from registry.services import identities

from .console import csrf_from, post_form, sign_in, signed_in, text, token_of


def test_pages_send_a_visitor_to_sign_in_and_back(secure_client):
    response = secure_client.get("/models?q=churn")
    assert response.status_code == 302
    assert response.headers["Location"] == "/signin?next=/models?q%3Dchurn"


def test_signing_in_with_a_token_opens_the_inbox(secure_client, make_user):
    response = sign_in(secure_client, make_user("rita"))
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    page = secure_client.get("/")
    assert page.status_code == 200 and "rita" in text(page) and "Sign out" in text(page)


def test_a_wrong_token_is_refused(secure_client):
    response = sign_in(secure_client, "reg_not-a-token-at-all-00000000000000000")
    assert response.status_code == 401
    assert "do not match a valid token" in text(response)
    assert secure_client.get("/").status_code == 302


def test_a_user_name_that_is_not_the_tokens_owner_is_refused(secure_client, make_user):
    headers = make_user("rita")
    make_user("sam")
    assert sign_in(secure_client, headers, user_name="sam").status_code == 401
    assert sign_in(secure_client, headers, user_name="rita").status_code == 302


def test_the_cookie_is_http_only_same_site_and_not_secure_over_http(secure_client, make_user):
    cookie = sign_in(secure_client, make_user("rita")).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie


def test_the_cookie_is_secure_over_https(secure_app, db_session, make_user):
    client = secure_app.test_client()
    token = token_of(make_user("rita"))
    page = client.get("/signin", base_url="https://registry.example")
    response = client.post("/signin", base_url="https://registry.example",
                           headers={"Referer": "https://registry.example/signin"},
                           data={"csrf_token": csrf_from(text(page)), "token": token})
    assert response.status_code == 302, text(response)
    assert "Secure" in response.headers["Set-Cookie"]


def test_the_session_is_a_token_made_from_the_one_signed_in_with(secure_client, make_user):
    signed_in(secure_client, make_user("rita"))
    tokens = identities.list_tokens(SYSTEM, "rita")
    session_tokens = [t for t in tokens if t.description == "console session"]
    assert len(session_tokens) == 1 and session_tokens[0].expires_at is not None


def test_signing_out_ends_the_session_and_revokes_its_token(secure_client, make_user):
    signed_in(secure_client, make_user("rita"))
    response = post_form(secure_client, "/", "/signout")
    assert (response.status_code, response.headers["Location"]) == (302, "/signin")
    assert secure_client.get("/").status_code == 302
    session_token = next(t for t in identities.list_tokens(SYSTEM, "rita") if t.description == "console session")
    assert session_token.revoked_at is not None


def test_revoking_the_token_signed_in_with_ends_the_session(secure_client, make_user):
    headers = make_user("rita")
    signed_in(secure_client, headers)
    original = next(t for t in identities.list_tokens(SYSTEM, "rita") if t.description != "console session")
    assert secure_client.get("/").status_code == 200
    assert secure_client.delete(f"/api/v1/tokens/{original.id}", headers=headers).status_code == 200
    response = secure_client.get("/")
    assert response.status_code == 302
    page = secure_client.get(response.headers["Location"])
    assert "Your session has ended" in text(page) and "revoked" in text(page)


def test_a_post_without_the_csrf_token_is_refused(secure_client, make_user):
    signed_in(secure_client, make_user("rita"))
    response = secure_client.post("/signout")
    assert response.status_code == 400 and "Form expired or forged" in text(response)
    assert secure_client.get("/").status_code == 200  # still signed in: the forged sign-out did nothing


def test_a_post_with_another_sessions_csrf_token_is_refused(secure_app, secure_client, make_user):
    signed_in(secure_client, make_user("rita"))
    other = secure_app.test_client()
    foreign = csrf_from(text(other.get("/signin")))
    assert secure_client.post("/signout", data={"csrf_token": foreign}).status_code == 400


def test_sign_in_itself_needs_the_csrf_token(secure_client, make_user):
    response = secure_client.post("/signin", data={"token": token_of(make_user("rita"))})
    assert response.status_code == 400


def test_the_api_never_accepts_the_console_cookie(secure_client, make_user):
    signed_in(secure_client, make_user("rita", "READ"))
    assert secure_client.get("/").status_code == 200
    assert secure_client.get("/api/v1/models").status_code == 401
    assert secure_client.get("/api/2.0/mlflow/registered-models/search").status_code == 401


def test_after_sign_in_only_local_paths_are_followed(secure_app, db_session, make_user):
    headers = make_user("rita")
    for target, expected in [("/models", "/models"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
                             ("/\\evil.example", "/")]:
        client = secure_app.test_client()
        page = client.get("/signin")
        response = client.post("/signin", data={"csrf_token": csrf_from(text(page)), "next": target,
                                                       "token": token_of(headers)})
        assert response.headers["Location"] == expected, target


def test_pages_are_not_cached_or_framed(secure_client, make_user):
    signed_in(secure_client, make_user("rita"))
    response = secure_client.get("/")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_with_authentication_disabled_every_page_says_so(client):
    for path in ("/signin", "/", "/models", "/audit"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert "Authentication is disabled" in text(response), path


def test_with_authentication_disabled_the_user_says_who_they_are(client):
    page = client.get("/signin")
    response = client.post("/signin", data={"csrf_token": csrf_from(text(page)), "user_name": "dora"})
    assert response.status_code == 302
    assert "dora" in text(client.get("/"))


def test_every_console_route_needs_a_session(secure_app, secure_client, world):
    """GETs send the visitor to sign in; POSTs (with a valid CSRF token, so the session is what is missing) are
    refused with 401. Only signing in and out and the stylesheet are open."""
    import re

    from registry.api.authn import CONSOLE_BLUEPRINT

    values = {"name": "churn", "number": "2", "request_id": "1", "comment_id": "1", "alias_name": "champion",
              "decision": "approve", "filename": "console.css"}
    open_endpoints = {"web.signin", "web.signin_submit", "web.signout", "web.static"}
    csrf = csrf_from(text(secure_client.get("/signin")))
    checked = 0
    for rule in secure_app.url_map.iter_rules():
        if not rule.endpoint.startswith(CONSOLE_BLUEPRINT + ".") or rule.endpoint in open_endpoints:
            continue
        path = re.sub(r"<(?:[^:>]+(?:\([^)]*\))?:)?([^>]+)>", lambda m: values[m.group(1)], rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = secure_client.open(path, method=method, data={"csrf_token": csrf})
            if method == "GET":
                assert response.status_code == 302 and response.headers["Location"].startswith("/signin"), path
            else:
                assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 12
