"""One HTTP POST to a receiver, safely: the only way the registry calls out.

* https only, unless ``REGISTRY_WEBHOOK_ALLOW_HTTP`` is true.
* The address is checked *after connecting*, on the socket's actual peer, so a name that resolves to a public
  address when checked and to a private one when used (DNS rebinding) gains nothing. Loopback, private,
  link-local (which includes the cloud metadata address 169.254.169.254), multicast, reserved and unspecified
  addresses are refused unless inside ``REGISTRY_WEBHOOK_ALLOW_NETWORKS``.
* Redirects are never followed (a 3xx is a failed attempt); connect and read each time out; at most
  ``MAX_RESPONSE`` bytes of the answer are read.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from urllib.parse import urlsplit

MAX_RESPONSE = 64 * 1024
EXCERPT = 1024


class Refused(Exception):
    """The receiver may not be called (scheme or address): no point retrying until the operator says so."""


@dataclass(frozen=True)
class Policy:
    allow_http: bool = False
    allow_networks: tuple[str, ...] = ()
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings) -> "Policy":
        return cls(settings.webhook_allow_http, settings.webhook_allow_networks, settings.webhook_timeout_seconds)


@dataclass(frozen=True)
class Request:
    """A call to make, as a dialect built it: where, the exact bytes (signatures cover them), headers."""

    url: str
    body: bytes
    headers: dict[str, str]
    verify_tls: bool = True


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None  # seconds, from a Retry-After header
    latency_ms: int

    @property
    def excerpt(self) -> str:
        return self.body[:EXCERPT].decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def check_url(url: str, policy: Policy) -> None:
    parts = urlsplit(url)
    if parts.scheme == "http" and not policy.allow_http:
        raise Refused("http:// receivers are refused (set REGISTRY_WEBHOOK_ALLOW_HTTP=true to allow them)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {url}")


def check_address(address: str, policy: Policy) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(net) for net in policy.allow_networks):
        return
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global):
        raise Refused(f"the receiver's address {ip} is loopback, private, link-local or reserved "
                      "(allow it with REGISTRY_WEBHOOK_ALLOW_NETWORKS)")


def _connector(policy: Policy):
    def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
        sock = socket.create_connection(address, timeout, source_address, **kwargs)
        try:
            check_address(sock.getpeername()[0], policy)
        except BaseException:
            sock.close()
            raise
        return sock

    return create_connection


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def post(url: str, body: bytes, headers: dict[str, str], policy: Policy, *, verify_tls: bool = True) -> Answer:
    """POST ``body``; raise ``Refused`` for a forbidden receiver and ``OSError`` (timeouts included) when there
    is no answer. Any HTTP answer, 3xx included, is returned."""
    check_url(url, policy)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=policy.timeout_seconds, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=policy.timeout_seconds)
    # http.client opens its socket through this attribute (HTTPS wraps the socket afterwards): the peer is
    # checked before a byte is sent.
    conn._create_connection = _connector(policy)
    started = time.perf_counter()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                       "User-Agent": "registry-webhooks", **headers})
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE)
        return Answer(response.status, data, _retry_after(response.getheader("Retry-After")),
                      int((time.perf_counter() - started) * 1000))
    except http.client.HTTPException as error:
        raise OSError(f"bad HTTP answer: {error!r}") from error
    finally:
        conn.close()
