"""Kubernetes NetworkPolicy semantics, enough to ask "may this pod open this port on that one?".

A connection is allowed when the source's egress and the destination's ingress both allow it; a
direction no policy selects a pod for is open. Peers outside the namespace the policies belong to
are judged only by the side the policies govern. Ports are TCP unless said otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "tenantry"


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str = NAMESPACE
    ip: str = "10.244.1.10"

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class Address:
    """A destination outside the cluster (an external database, a webhook receiver)."""

    ip: str


@dataclass
class Policies:
    items: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, resources: list[dict[str, Any]]) -> Policies:
        return cls([r for r in resources if r["kind"] == "NetworkPolicy"])

    def allows(self, source: Pod, destination: Pod | Address, port: int, protocol="TCP") -> bool:
        if source.namespace == NAMESPACE and not self._direction_allows(
            source, "Egress", destination, port, protocol
        ):
            return False
        if isinstance(destination, Pod) and destination.namespace == NAMESPACE:
            return self._direction_allows(destination, "Ingress", source, port, protocol)
        return True

    def _direction_allows(self, pod: Pod, direction: str, peer, port: int, protocol: str) -> bool:
        selecting = [
            p
            for p in self.items
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"]["podSelector"], pod.labels)
        ]
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy["spec"].get(key, []):
                peers = rule.get(peers_key)
                if peers and not any(peer_matches(p, peer) for p in peers):
                    continue
                if port_matches(rule.get("ports"), port, protocol):
                    return True
        return False


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def peer_matches(peer: dict[str, Any], other: Pod | Address) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != NAMESPACE:
        return False
    return selects(peer.get("podSelector", {}), other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)
