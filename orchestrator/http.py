"""Safe outbound HTTP for callbacks and webhooks.

- Only ``http`` and ``https`` URLs, no credentials in the URL, redirects never followed (a 3xx is returned
  to the caller like any other answer).
- SSRF guard: the host is resolved once; every resolved address must be public (``is_global``) unless
  ``settings.WEBHOOK_ALLOWED_HOSTS`` allows the host name or the address (exact IPs or CIDR ranges).
  An IPv6 address that carries an IPv4 address (mapped, translated, compatible, NAT64, 6to4, Teredo) is
  judged by that IPv4 address too: on a NAT64 network ``64:ff9b::a9fe:a9fe`` is 169.254.169.254.
  Cloud metadata addresses are refused unless listed as exact IPs. The connection is made to the
  address that was checked (pinned), so a second DNS answer (DNS rebinding) cannot move it elsewhere;
  TLS still verifies the certificate against the host name (SNI).
- Connect and read timeouts always (``WEBHOOK_CONNECT_TIMEOUT``/``WEBHOOK_READ_TIMEOUT``) plus an overall
  deadline for reading the answer, and a cap on the answer's size (``WEBHOOK_MAX_RESPONSE_BYTES``).
"""

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from orchestrator.telemetry import client_span

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, ECS task metadata, Alibaba, Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
# IPv6 forms that stand for one IPv4 address, kept in the low 32 bits: only that address matters.
# IPv4-mapped (RFC 4291), IPv4-translated (RFC 2765), NAT64 well-known prefix (RFC 6052), IPv4-compatible
# (RFC 4291, deprecated; also holds :: and ::1, which map to the non-public 0.0.0.0/8).
IPV4_TRANSLATION_NETWORKS = tuple(
    ipaddress.IPv6Network(network) for network in ("::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "::/96")
)
# Not public, although ``is_global`` says so on this Python: site-local (RFC 3879), local-use NAT64 (RFC 8215;
# its embedded address depends on the operator's prefix length), documentation (RFC 9637), SRv6 SIDs (RFC 9602).
NON_PUBLIC_IPV6_NETWORKS = tuple(
    ipaddress.IPv6Network(network) for network in ("fec0::/10", "64:ff9b:1::/48", "3fff::/20", "5f00::/16")
)
ALLOWED_SCHEMES = ("http", "https")
_READ_CHUNK = 16 * 1024


class OutboundRefused(Exception):
    """The request was not sent because it is not allowed (scheme, host, address). Never retried."""


class OutboundError(Exception):
    """The request was sent (or tried) but no answer came: connection error, timeout. Worth retrying."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    duration_ms: int
    address: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _allowed_entries() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network], set[IPAddress]]:
    names: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    exact: set[IPAddress] = set()
    for entry in getattr(settings, "WEBHOOK_ALLOWED_HOSTS", []):
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                exact.add(ipaddress.ip_address(entry))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks, exact


def _normalise(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and a packet to it can reach, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if any(address in network for network in IPV4_TRANSLATION_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:  # 2002::/16: the 6to4 router's IPv4 address
        return address.sixtofour
    if address.teredo is not None:  # 2001::/32: (server, client); the client's address is stored inverted
        return address.teredo[1]
    return None


def _judged(address: IPAddress) -> list[IPAddress]:
    """The addresses whose kind decides: a translation is its IPv4 address alone; a tunnel address (6to4,
    Teredo) is both itself and the IPv4 endpoint it carries."""
    embedded = embedded_ipv4(address)
    if embedded is None:
        return [address]
    if any(address in network for network in IPV4_TRANSLATION_NETWORKS):
        return [embedded]
    return [address, embedded]


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and any(address in net for net in NON_PUBLIC_IPV6_NETWORKS):
        return False
    return address.is_global and not address.is_multicast


def address_check(*, host: str, address: IPAddress) -> None:
    """Raise ``OutboundRefused`` unless ``address`` (resolved from ``host``) may be reached."""
    names, networks, exact = _allowed_entries()
    address = _normalise(address)
    judged = _judged(address)
    shown = address if judged == [address] else f"{address}, which reaches {judged[-1]}"
    if any(candidate in METADATA_ADDRESSES for candidate in judged):
        if address in exact or any(candidate in exact for candidate in judged):
            return
        raise OutboundRefused(f"{host} resolves to a cloud metadata address ({shown})")

    def listed(candidate: IPAddress) -> bool:
        return candidate in exact or any(candidate in network for network in networks)

    if host.lower().rstrip(".") in names or listed(address):
        return
    if all(_is_public(candidate) or listed(candidate) for candidate in judged):
        return
    raise OutboundRefused(f"{host} resolves to a non-public address ({shown}); not in WEBHOOK_ALLOWED_HOSTS")


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to (a literal IP resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OutboundError(f"cannot resolve {host}: {error.strerror or error}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # str(): an IPv4/IPv6 sockaddr's host is a str already; the stubs also allow other families' int.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundError(f"cannot resolve {host}")
    return addresses


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress


def url_check(url: str) -> Target:
    """Validate ``url`` and pick the address to connect to; raise ``OutboundRefused`` if not allowed.

    Every address the name resolves to must pass (an attacker controlling DNS could otherwise mix a public
    and a private answer); the first is used and pinned for the connection.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise OutboundRefused(f"invalid URL: {error}") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise OutboundRefused(f"scheme {scheme or '(none)'!r} is not allowed; only http and https")
    if parts.username or parts.password:
        raise OutboundRefused("credentials in the URL are not allowed")
    host = parts.hostname
    if not host:
        raise OutboundRefused("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    addresses = resolve(host, port)
    for address in addresses:
        address_check(host=host, address=address)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, address=_normalise(addresses[0]))


@dataclass(frozen=True)
class UrlVerdict:
    verdict: str  # "allowed" | "refused" (never sent) | "unresolved" (a delivery would retry)
    reason: str
    address: str = ""


def url_verdict(url: str) -> UrlVerdict:
    """The guard's verdict on ``url`` as a delivery would get it now (its host name is resolved), without
    connecting: for the dry run."""
    try:
        target = url_check(url)
    except OutboundRefused as error:
        return UrlVerdict("refused", str(error))
    except OutboundError as error:
        return UrlVerdict("unresolved", str(error))
    return UrlVerdict("allowed", f"{target.host} → {target.address}", address=str(target.address))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: IPAddress, connect_timeout: float, read_timeout: float):
        super().__init__(host, port, timeout=read_timeout)
        self._address = address
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    def _open_socket(self) -> socket.socket:
        """Connect to the checked address itself: no second name lookup can happen here."""
        family = socket.AF_INET6 if self._address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._connect_timeout)
            sock.connect((str(self._address), self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def __init__(self, *args: object, context: ssl.SSLContext, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._context = context

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(self._open_socket(), server_hostname=self.host)


def http_post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    max_response_bytes: int | None = None,
) -> OutboundResponse:
    """POST exactly ``body`` to ``url`` with ``headers``; return the answer without following redirects.

    Raises ``OutboundRefused`` before sending anything not allowed, ``OutboundError`` when no answer came.
    Traced as a client span whose ``traceparent`` goes along (when tracing is on).
    """
    with client_span("POST", url) as traced:
        response = _post(
            url,
            body=body,
            headers={**headers, **traced.headers},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_response_bytes=max_response_bytes,
        )
        traced.answered(response.status)
        return response


def _post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    connect_timeout: float | None,
    read_timeout: float | None,
    max_response_bytes: int | None,
) -> OutboundResponse:
    connect_timeout = settings.WEBHOOK_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    read_timeout = settings.WEBHOOK_READ_TIMEOUT if read_timeout is None else read_timeout
    cap = settings.WEBHOOK_MAX_RESPONSE_BYTES if max_response_bytes is None else max_response_bytes
    target = url_check(url)
    if target.scheme == "https":
        connection: _PinnedHTTPConnection = _PinnedHTTPSConnection(
            target.host,
            target.port,
            address=target.address,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            context=ssl.create_default_context(),
        )
    else:
        connection = _PinnedHTTPConnection(
            target.host, target.port, address=target.address, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
    started = time.monotonic()
    deadline = started + connect_timeout + read_timeout
    try:
        connection.putrequest("POST", target.path, skip_accept_encoding=True)
        sent = {name.lower() for name in headers}
        for name, value in headers.items():
            connection.putheader(name, value)
        if "content-length" not in sent:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        truncated = False
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took longer than the read timeout")
            chunk = response.read1(_READ_CHUNK) if hasattr(response, "read1") else response.read(_READ_CHUNK)
            if not chunk:
                break
            if size + len(chunk) > cap:
                chunks.append(chunk[: cap - size])
                truncated = True
                break
            chunks.append(chunk)
            size += len(chunk)
        return OutboundResponse(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=b"".join(chunks),
            truncated=truncated,
            duration_ms=int((time.monotonic() - started) * 1000),
            address=str(target.address),
            reason=response.reason or "",
        )
    except TimeoutError as error:
        raise OutboundError(f"timed out talking to {target.host}:{target.port}: {error}", timeout=True) from None
    except ssl.SSLError as error:
        raise OutboundError(f"TLS error with {target.host}:{target.port}: {error.reason or error}") from None
    except (OSError, http.client.HTTPException) as error:
        name = error.__class__.__name__
        raise OutboundError(f"connection to {target.host}:{target.port} failed: {name}: {error}") from None
    finally:
        connection.close()
