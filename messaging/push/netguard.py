"""Push targets are URLs users hand us, which our worker then calls: only
public HTTPS hosts, checked at registration and again when sending (a name
can resolve elsewhere later), and no redirects anywhere."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from messaging.push.exceptions import InvalidTarget


def check_url(url: str, *, field: str, resolve: bool) -> None:
    """Refuse anything but https to a public address (http and private
    addresses only with PUSH_ALLOW_PRIVATE_TARGETS, for local receivers)."""
    parts = urlsplit(url)
    allow_private = settings.PUSH_ALLOW_PRIVATE_TARGETS
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise InvalidTarget("The URL must be https.", field=field)
    if not parts.hostname or parts.username or parts.password:
        raise InvalidTarget("The URL must name a host, without credentials.", field=field)
    if allow_private or not resolve:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except (socket.gaierror, UnicodeError):
        raise InvalidTarget("The URL's host does not resolve.", field=field) from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global:
            raise InvalidTarget("The URL's host is not a public address.", field=field)
