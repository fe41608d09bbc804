"""Network safety of every call out (registry/events/network.py), against real sockets: loopback, private
and metadata addresses are refused after connecting unless allow-listed, names are no way around it,
redirects are never followed, http needs the operator's consent."""
from __future__ import annotations

import socket

import pytest

from registry.events import network
from registry.events.network import Policy, Refused

from .receiver import Receiver

HTTP_OK = Policy(allow_http=True, timeout_seconds=5)


def own_address() -> str | None:
    """This machine's first non-loopback address, if it has one (a private one in any test environment)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_loopback_is_refused_and_nothing_is_sent():
    with Receiver() as receiver:
        with pytest.raises(Refused, match="127.0.0.1"):
            network.post(receiver.url, b"{}", {}, HTTP_OK)
    assert receiver.received == []


def test_a_name_that_resolves_to_loopback_is_refused_too():
    with Receiver() as receiver:
        with pytest.raises(Refused):
            network.post(receiver.url.replace("127.0.0.1", "localhost"), b"{}", {}, HTTP_OK)
    assert receiver.received == []


def test_a_private_address_is_refused():
    address = own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    with Receiver(host="0.0.0.0") as receiver:
        with pytest.raises(Refused, match=address):
            network.post(receiver.url.replace("0.0.0.0", address), b"{}", {}, HTTP_OK)
    assert receiver.received == []


@pytest.mark.parametrize("address", ["169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "::1",
                                     "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"])
def test_metadata_private_link_local_and_reserved_addresses_are_refused(address):
    with pytest.raises(Refused):
        network.check_address(address, Policy())


def test_public_addresses_pass_and_the_allow_list_lets_private_ones_in():
    network.check_address("93.184.216.34", Policy())
    network.check_address("10.1.2.3", Policy(allow_networks=("10.0.0.0/8",)))
    with pytest.raises(Refused):
        network.check_address("10.1.2.3", Policy(allow_networks=("192.168.0.0/16",)))


def test_an_allow_listed_loopback_receiver_is_called():
    with Receiver() as receiver:
        answer = network.post(receiver.url, b'{"a":1}', {"X-Test": "1"},
                              Policy(allow_http=True, allow_networks=("127.0.0.0/8",), timeout_seconds=5))
        [sent] = receiver.wait_for(1)
    assert answer.status == 200 and sent.body == b'{"a":1}' and sent.headers["X-Test"] == "1"


def test_http_needs_the_operators_consent():
    with pytest.raises(Refused, match="REGISTRY_WEBHOOK_ALLOW_HTTP"):
        network.post("http://hooks.example/x", b"{}", {}, Policy(allow_networks=("0.0.0.0/0",)))


def test_redirects_are_not_followed():
    policy = Policy(allow_http=True, allow_networks=("127.0.0.0/8",), timeout_seconds=5)
    with Receiver() as target, Receiver(answers=[(302, {"Location": "PLACEHOLDER"})]) as redirecting:
        redirecting.answers[0] = (302, {"Location": target.url})
        answer = network.post(redirecting.url, b"{}", {}, policy)
    assert answer.status == 302 and target.received == []
