"""Driving the console with the Flask test client, as a browser would: forms carry the CSRF token the page gave."""
from __future__ import annotations

import re

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client, headers_or_token, user_name: str = ""):
    token = headers_or_token if isinstance(headers_or_token, str) else token_of(headers_or_token)
    page = client.get("/signin")
    return client.post("/signin", data={"csrf_token": csrf_from(page.get_data(as_text=True)), "token": token,
                                        "user_name": user_name})


def signed_in(client, headers_or_token):
    response = sign_in(client, headers_or_token)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def post_form(client, page_path: str, action: str, **fields):
    """Submit a form as the page ``page_path`` would: with that page's CSRF token."""
    page = client.get(page_path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(action, data={"csrf_token": csrf_from(page.get_data(as_text=True)), **fields})


def text(response) -> str:
    return response.get_data(as_text=True)
