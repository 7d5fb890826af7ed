"""Safe outbound HTTP: schemes, SSRF guard with a pinned address, no redirects, timeouts, size cap."""

import ipaddress
import socket
import threading

import pytest

from devstack.receivers import Receiver, Reply
from orchestrator.http import OutboundError, OutboundRefused, address_check, embedded_ipv4, http_post


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def post(url, **kwargs):
    return http_post(url, body=b'{"a":1}', headers={"content-type": "application/json"}, **kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.10/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://[::1]/hook",  # loopback, but only 127.0.0.1/localhost are allowed in tests
        "http://[fd00::1]/hook",
        "http://[::ffff:10.0.0.5]/hook",  # IPv4-mapped private address
        "http://224.0.0.1/hook",
    ],
)
def test_private_addresses_are_refused(url):
    with pytest.raises(OutboundRefused, match="non-public"):
        post(url)


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://169.254.170.2/v2"]
)
def test_cloud_metadata_addresses_are_refused(url):
    with pytest.raises(OutboundRefused, match="metadata"):
        post(url)


# IPv6 addresses that carry an IPv4 address: (address, the IPv4 address it reaches).
EMBEDDED_IPV4 = [
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 well-known prefix
    ("::a9fe:a9fe", "169.254.169.254"),  # IPv4-compatible
    ("2002:a9fe:a9fe::", "169.254.169.254"),  # 6to4
    ("::ffff:0:a00:1", "10.0.0.1"),  # IPv4-translated
    ("::ffff:a00:1", "10.0.0.1"),  # IPv4-mapped
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),  # Teredo: the client's address is stored inverted
    ("64:ff9b::808:808", "8.8.8.8"),
    ("2606:4700:4700::1111", None),
]


@pytest.mark.parametrize(("address", "ipv4"), EMBEDDED_IPV4)
def test_the_ipv4_address_inside_an_ipv6_address_is_found(address, ipv4):
    found = embedded_ipv4(ipaddress.ip_address(address))
    assert found == (ipaddress.ip_address(ipv4) if ipv4 else None)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),  # on a NAT64 network: 169.254.169.254
        ("http://[::a9fe:a9fe]/", "metadata"),
        ("http://[2002:a9fe:a9fe::]/", "metadata"),
        ("http://[::ffff:0:a9fe:a9fe]/", "metadata"),
        ("http://[::ffff:0:a00:1]/", "non-public"),  # IPv4-translated 10.0.0.1
        ("http://[64:ff9b::a00:1]/", "non-public"),
        ("http://[64:ff9b::c0a8:101]/", "non-public"),  # 192.168.1.1
        ("http://[::c0a8:101]/", "non-public"),
        ("http://[2002:c0a8:101::1]/", "non-public"),  # 6to4 through 192.168.1.1
        ("http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "non-public"),  # Teredo, client 10.0.0.1
        ("http://[fec0::1]/", "non-public"),  # site-local (deprecated, still routed on some networks)
        ("http://[64:ff9b:1::a00:1]/", "non-public"),  # local-use NAT64 prefix
        ("http://[3fff::1]/", "non-public"),  # documentation
        ("http://[fe80::1]/", "non-public"),
        ("http://[ff0e::1]/", "non-public"),  # global-scope multicast
        ("http://[::]/", "non-public"),
    ],
)
def test_ipv6_forms_of_private_and_metadata_addresses_are_refused(url, reason):
    with pytest.raises(OutboundRefused, match=reason):
        post(url)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700:4700::1111"])
def test_ipv6_forms_of_public_addresses_pass(address):
    address_check(host="hooks.example.com", address=ipaddress.ip_address(address))


def test_the_allow_list_covers_the_ipv6_forms_of_an_allowed_ipv4_range(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["10.0.0.0/8"]
    address_check(host="hooks.internal", address=ipaddress.ip_address("64:ff9b::a00:1"))
    reaches = r"non-public address \(64:ff9b::c0a8:101, which reaches 192\.168\.1\.1\)"
    with pytest.raises(OutboundRefused, match=reaches):
        address_check(host="hooks.internal", address=ipaddress.ip_address("64:ff9b::c0a8:101"))


def test_metadata_is_refused_even_when_link_local_ranges_are_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["169.254.0.0/16"]
    with pytest.raises(OutboundRefused, match="metadata"):
        post("http://169.254.169.254/")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/", "javascript:alert(1)", "//x/y"]
)
def test_only_http_and_https_are_allowed(url):
    with pytest.raises(OutboundRefused, match="scheme"):
        post(url)


def test_credentials_in_the_url_are_refused(receiver):
    with pytest.raises(OutboundRefused, match="credentials"):
        post(f"http://user:pw@127.0.0.1:{receiver.port}/hook")
    assert receiver.requests == []


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    # given DNS that answers a private address for a public-looking name
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))],
    )
    with pytest.raises(OutboundRefused, match=r"10\.1\.2\.3"):
        post("https://hooks.example.com/x")


def test_a_name_with_one_private_answer_among_public_ones_is_refused(monkeypatch):
    answers = [("93.184.216.34", 443), ("10.0.0.7", 443)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in answers],
    )
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.7"):
        post("https://hooks.example.com/x")


def test_the_checked_address_is_the_one_connected_to(receiver, monkeypatch, settings):
    # given a name that resolves to the allowed loopback first, then (rebinding) to a metadata address
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    calls = []

    def rebinding(host, port, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    # when a request is made to that name
    response = post(f"http://rebind.example:{receiver.port}/hook")

    # then the name was resolved once and the request reached the checked address, Host header kept
    assert response.status == 204
    assert response.address == "127.0.0.1"
    assert calls == ["rebind.example"]
    (request,) = receiver.requests
    assert request.headers["host"] == f"rebind.example:{receiver.port}"


def test_redirects_are_not_followed(receiver):
    receiver.script("/hook", Reply(302, headers={"Location": receiver.url("/target")}))

    response = post(receiver.url("/hook"))

    assert response.status == 302
    assert receiver.paths() == ["/hook"]


def test_exactly_the_given_bytes_are_sent(receiver):
    body = '{"b":"ü","a":1}'.encode()
    http_post(receiver.url("/hook"), body=body, headers={"content-type": "application/json"})
    assert receiver.requests[0].body == body


def test_the_answer_is_capped(receiver):
    receiver.script("/hook", Reply(200, body=b"x" * 10_000))

    response = post(receiver.url("/hook"), max_response_bytes=1000)

    assert response.truncated is True
    assert len(response.body) == 1000


def test_a_slow_answer_times_out(receiver):
    hold = threading.Event()
    receiver.script("/hook", Reply(204, hold=hold))
    try:
        with pytest.raises(OutboundError, match="timed out") as raised:
            post(receiver.url("/hook"), read_timeout=0.2)
    finally:
        hold.set()
    assert raised.value.timeout is True


def test_localhost_is_allowed_by_name_in_tests(receiver):
    response = post(receiver.url("/hook", host="localhost"))
    assert response.status == 204
