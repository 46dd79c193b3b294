"""What the chart tests share besides fixtures: paths, the release and namespace, the
manifest types and the value scenarios. Tests import it as ``chartkit`` — a name no
other test folder uses; ``from conftest import`` would get whichever folder's conftest
was imported first when several folders run in one pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = REPO_ROOT / "charts" / "headwater"
RELEASE = "hw"
NAMESPACE = "headwater-system"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]
RenderError = Callable[[dict[str, Any]], str]


# The value combinations every structural check runs against: each switches on a
# different branch of the templates.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha-cluster-wide": {"replicas": 2},
    "ha-namespaced": {"replicas": 3, "watchNamespaces": ["team-a", "team-b"]},
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
            "prometheusRule": {
                "enabled": True,
                "runbookBaseUrl": "https://runbooks.example.com/headwater",
                "additionalAlertLabels": {"team": "data"},
            },
        }
    },
    "network-policy": {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}},
    "network-policy-any-apiserver": {"networkPolicy": {"enabled": True}},
    "no-crds": {"crds": {"install": False, "keep": True}},
    "ui": {"ui": {"enabled": True}},
    "ui-namespaced-client": {
        "watchNamespaces": ["team-a", "team-b"],
        "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}},
        "ui": {
            "enabled": True,
            "auth": "client",
            "namespaces": ["team-a"],
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "host": "headwater.example.com",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "tls": {"secretName": "headwater-ui-tls"},
            },
            "networkPolicy": {
                "enabled": True,
                "extraEgress": [{"to": [{"ipBlock": {"cidr": "52.216.0.0/15"}}],
                                 "ports": [{"port": 443, "protocol": "TCP"}]}],
            },
        },
    },
    "everything-off": {
        "admissionPolicy": {"enabled": False},
        "crds": {"install": False, "keep": False},
        "dashboard": {"enabled": False},
        "rbac": {"create": False, "aggregateClusterRoles": False},
        "serviceAccount": {"create": False, "name": "platform-operator"},
    },
}
