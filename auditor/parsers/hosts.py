"""The one host -> country classifier, over one data file (rules/endpoints.yaml).

Used by the endpoints scanner (hosts named in shipped files), the deployment scanner and provenance
(the hosts a fetch contacted). A host is classified by its operator (the longest matching domain in
`domains`), else by a country-code TLD; an IP address by the offline registry table of the `iptocc`
package (the country the address block is registered to); loopback and private addresses are the
user's own network. Anything else is unknown: `country` is "" and `known` is False.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from auditor import rules
from auditor.record import record

_REGION = re.compile(r"(?:^|[.-])((?:cn|us|ap|eu|me|sa|ca|af|hk)-[a-z]+(?:-\d+)?)(?=[.-])")

PRIVATE = "private"      # kind of a loopback, private or link-local address: the user's own network
IP = "ip"                # kind of a public IP address classified by its registered country


@record(frozen=True)
class HostInfo:
    host: str
    country: str = ""
    kind: str = ""
    operator: str = ""
    domain: str = ""
    region: str = ""

    @property
    def known(self) -> bool:
        """Whether the host's jurisdiction is known (a country, or the user's own network)."""
        return bool(self.country) or self.kind == PRIVATE


def ip_country(address: str) -> str:
    """The ISO country an IP address block is registered to (offline table), or "" when unknown."""
    try:
        import iptocc
    except ImportError:
        return ""
    try:
        return str(iptocc.country_code(address) or "").upper()
    except (ValueError, TypeError):
        return ""


class Classifier:
    def __init__(self, data: dict[str, Any]):
        self.domains = {d["domain"].lower(): d for d in data["domains"]}
        self.max_labels = max(d.count(".") + 1 for d in self.domains)
        self.tlds = {k.lower(): v for k, v in data["country_tlds"].items()}
        self.ignored = {h.lower() for h in data.get("ignored_hosts", ())}
        self.ignored_suffixes = tuple(s.lower() for s in data.get("ignored_suffixes", ()))
        self.data = data

    def ignored_host(self, host: str) -> bool:
        return host in self.ignored or host.endswith(self.ignored_suffixes)

    def classify(self, host: str) -> HostInfo:
        host = host.lower().rstrip(".").strip("[]")
        address = _address(host)
        if address is not None:
            if not address.is_global:
                return HostInfo(host, "", PRIVATE, "your own network", host)
            country = ip_country(host)
            return HostInfo(host, country, IP, f"IP address registered in {country}" if country else "IP address")
        labels = host.split(".")
        region_match = _REGION.search(host)
        region = region_match.group(1) if region_match else ""
        for i in range(max(0, len(labels) - self.max_labels), len(labels)):
            entry = self.domains.get(".".join(labels[i:]))
            if entry:
                return HostInfo(host, entry["country"], entry["kind"], entry.get("operator", ""), entry["domain"],
                                region)
        country = self.tlds.get(labels[-1], "")
        if country:
            return HostInfo(host, country, "tld", f".{labels[-1]} domain", "." + labels[-1], region)
        if host == "localhost" or host.endswith(".localhost"):
            return HostInfo(host, "", PRIVATE, "your own machine", host)
        return HostInfo(host)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@functools.cache
def classifier() -> Classifier:
    return Classifier(rules.load("endpoints.yaml"))


def country_of(host: str) -> str:
    return classifier().classify(host).country
