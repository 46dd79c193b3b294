"""The UI in the cluster (issue #13, `ui.*`): what the chart renders for `headwater ui
--in-cluster`, and that its own ServiceAccount can only ever read.

docs/ui.md ("In the cluster") is the user's side of these promises: off by default;
a Deployment running the operator image's `headwater` console script with the restricted
security context of the operator's pod; read-only RBAC, namespaced or cluster-wide;
Service, optional Ingress and NetworkPolicy.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, NAMESPACE, RELEASE, REPO_ROOT, Manifest, Render, RenderError
from k8s_rbac import READ, WRITE, Request, rules_allow, service_account_rules

UI = f"{RELEASE}-headwater-ui"
OPERATOR_SA = f"{RELEASE}-headwater"
HW = "headwater.dev"
ENABLED: dict[str, Any] = {"ui": {"enabled": True}}
# Every verb an RBAC rule can carry that changes something (rbac.go's resource verbs
# beyond reads, plus the special ones).
WRITE_VERBS = {*WRITE, "escalate", "bind", "impersonate", "approve", "sign", "use", "*"}
UI_KINDS = {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Role", "RoleBinding", "Ingress", "NetworkPolicy"}


def _ui_objects(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests
            if (m["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "ui"]


def _one(manifests: list[Manifest], kind: str, component: str = "ui") -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind
                and m["metadata"]["labels"].get("app.kubernetes.io/component") == component]
    return found


def _ui_roles(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in _ui_objects(manifests) if m["kind"] in ("ClusterRole", "Role")]


def _container(manifests: list[Manifest], component: str = "ui") -> dict[str, Any]:
    (container,) = _one(manifests, "Deployment", component)["spec"]["template"]["spec"][
        "containers"]
    return container


def _args(manifests: list[Manifest]) -> list[str]:
    args: list[str] = _container(manifests)["args"]
    return args


def _flag(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} must be passed once: {args}"
    return args[args.index(flag) + 1]


# --- on and off -------------------------------------------------------------------------
def test_the_ui_is_off_by_default_and_its_other_switches_do_not_turn_it_on(
        render: Render) -> None:
    assert _ui_objects(render()) == []
    everything_but_enabled = {"ui": {"enabled": False, "auth": "client",
                                     "ingress": {"enabled": True, "host": "hw.example.com"},
                                     "networkPolicy": {"enabled": True}}}
    assert render(everything_but_enabled) == render()


def test_enabled_renders_each_object_in_the_release_namespace(render: Render) -> None:
    objects = _ui_objects(render(ENABLED))
    assert sorted(m["kind"] for m in objects) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]
    for manifest in objects:
        assert manifest["metadata"]["name"] == UI, manifest["kind"]
        if manifest["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["kind"]
    full = _ui_objects(render({"ui": {"enabled": True, "ingress": {"enabled": True},
                                      "networkPolicy": {"enabled": True}}}))
    assert {m["kind"] for m in full} - {m["kind"] for m in objects} == {"Ingress",
                                                                       "NetworkPolicy"}


def test_the_operator_is_unchanged_by_the_ui(render: Render) -> None:
    operator_objects = [m for m in render(ENABLED) if m not in _ui_objects(render(ENABLED))]
    assert operator_objects == render()


def test_the_operator_gives_flow_run_pods_the_ui_address(render: Render) -> None:
    """With the UI's address known, the operator passes it on (``--ui-url``), so each run
    links its page (``runtime.flow_run.ui_url``); without the UI, no flag."""
    from headwater_operator.__main__ import build_parser

    def operator_args(values: dict[str, Any]) -> list[str]:
        [deployment] = [m for m in render(values) if m["kind"] == "Deployment"
                        and m["metadata"]["name"].endswith("headwater")]
        args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return args

    args = operator_args({"ui": {"enabled": True, "url": "https://hw.example.com/"}})
    assert build_parser().parse_args(args).ui_url == "https://hw.example.com"
    assert "--ui-url" not in operator_args({"ui": {"url": "https://hw.example.com"}})
    assert "--ui-url" not in operator_args({"ui": {"enabled": True}})


# --- the container ----------------------------------------------------------------------
def test_the_ui_runs_the_headwater_console_script_of_the_operator_image(
        render: Render) -> None:
    digest = "sha256:" + "b" * 64
    manifests = render({**ENABLED, "image": {"repository": "reg.local/hw", "digest": digest}})
    ui, operator = _container(manifests), _container(manifests, "operator")
    assert ui["image"] == operator["image"] == f"reg.local/hw@{digest}"
    assert ui["imagePullPolicy"] == operator["imagePullPolicy"]
    # The image's ENTRYPOINT is the operator; the UI overrides it with the `headwater`
    # script, which the SDK's wheel (installed in the image) declares.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "headwater_operator"]' in dockerfile
    assert re.search(r"pip wheel .*\./sdk", dockerfile)
    sdk = tomllib.loads((REPO_ROOT / "sdk" / "pyproject.toml").read_text())
    assert sdk["project"]["scripts"]["headwater"] == "headwater.cli:main"
    assert ui["command"] == ["headwater", "ui"]
    assert "command" not in operator


def test_the_command_line_says_in_cluster_auth_port_and_all_namespaces(
        render: Render) -> None:
    manifests = render(ENABLED)
    args = _args(manifests)
    assert args[0] == "--in-cluster"
    assert _flag(args, "--auth") == "server"
    assert _flag(args, "--address") == "0.0.0.0"
    assert _flag(args, "--port") == "8090"
    assert "--all-namespaces" in args
    assert "-n" not in args
    assert "--url" not in args
    client = _args(render({"ui": {"enabled": True, "auth": "client", "port": 9000,
                                  "url": "https://hw.example.com/",
                                  "extraArgs": ["--verbose"]}}))
    assert _flag(client, "--auth") == "client"
    assert _flag(client, "--port") == "9000"
    assert _flag(client, "--url") == "https://hw.example.com"
    assert client[-1] == "--verbose"


def test_image_origins_become_flags_and_anything_else_is_refused_by_the_schema(
        render: Render, render_error: RenderError) -> None:
    assert "--image-origin" not in _args(render(ENABLED))
    args = _args(render({"ui": {"enabled": True, "imageOrigins": [
        "https://grafana.example.com", "http://10.0.0.5:3000"]}}))
    pairs = [args[i + 1] for i, arg in enumerate(args) if arg == "--image-origin"]
    assert pairs == ["https://grafana.example.com", "http://10.0.0.5:3000"]
    error = render_error({"ui": {"enabled": True,
                                 "imageOrigins": ["https://grafana.example.com/d/x"]}})
    assert "imageOrigins" in error


def test_the_url_defaults_to_the_ingress_host(render: Render) -> None:
    def url(ingress: dict[str, Any]) -> str | None:
        args = _args(render({"ui": {"enabled": True, "ingress": ingress}}))
        return _flag(args, "--url") if "--url" in args else None

    assert url({"enabled": True, "host": "hw.example.com"}) == "http://hw.example.com"
    assert url({"enabled": True, "host": "hw.example.com",
                "tls": {"secretName": "hw-tls"}}) == "https://hw.example.com"
    assert url({"enabled": True, "host": "hw.example.com", "path": "/headwater/",
                "tls": {"secretName": "hw-tls"}}) == "https://hw.example.com/headwater"
    assert url({"enabled": True}) is None  # no host: no address to give
    assert url({"enabled": True, "host": "*.example.com"}) is None
    assert url({"enabled": False, "host": "hw.example.com"}) is None


def test_probes_and_ports_meet_on_the_ui_port(render: Render) -> None:
    manifests = render({"ui": {"enabled": True, "port": 9123}})
    container = _container(manifests)
    assert container["ports"] == [{"name": "http", "containerPort": 9123, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def test_security_context_is_the_operators_restricted_one(render: Render) -> None:
    for values in (ENABLED, {**ENABLED, "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 10001}}):
        manifests = render(values)
        ui_pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
        operator_pod = _one(manifests, "Deployment", "operator")["spec"]["template"]["spec"]
        assert ui_pod["securityContext"] == operator_pod["securityContext"]
        assert _container(manifests)["securityContext"] == _container(
            manifests, "operator")["securityContext"]
    manifests = render(ENABLED)
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    ctx = _container(manifests)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root still needs a writable /tmp (HOME is /tmp in the image).
    mounts = {m["mountPath"]: m["name"] for m in _container(manifests)["volumeMounts"]}
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]]


def test_pod_placement_and_metadata_come_from_ui_values(render: Render) -> None:
    deployment = _one(render({"ui": {
        "enabled": True, "replicas": 2, "podLabels": {"team": "data"},
        "podAnnotations": {"a": "b"}, "nodeSelector": {"pool": "web"},
        "tolerations": [{"key": "web", "operator": "Exists"}],
        "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]}}), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"][
        "labels"].items()
    assert spec["template"]["metadata"]["labels"]["team"] == "data"
    assert spec["template"]["metadata"]["annotations"] == {"a": "b"}
    assert spec["template"]["spec"]["nodeSelector"] == {"pool": "web"}
    assert spec["template"]["spec"]["tolerations"] == [{"key": "web", "operator": "Exists"}]
    (container,) = spec["template"]["spec"]["containers"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in container["env"]


# --- read-only RBAC ---------------------------------------------------------------------
READ_GRANTS = {
    (HW, "flows"): set(READ), (HW, "deployments"): set(READ), (HW, "schedules"): set(READ),
    (HW, "flowruns"): set(READ), (HW, "automations"): set(READ), ("", "events"): set(READ),
    ("", "pods"): set(READ), ("", "pods/log"): {"get"},
}
RBAC_MODES: dict[str, dict[str, Any]] = {
    "cluster-wide-server": ENABLED,
    "cluster-wide-client": {"ui": {"enabled": True, "auth": "client"}},
    "namespaced": {"ui": {"enabled": True, "auth": "client", "namespaces": ["team-a", "b"]}},
    "operator-namespaced": {"watchNamespaces": ["team-a"], **ENABLED},
}


def _grants(role: Manifest) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


@pytest.mark.parametrize("values", RBAC_MODES.values(), ids=RBAC_MODES.keys())
def test_every_rule_of_the_ui_is_a_read(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    roles = _ui_roles(manifests)
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= set(READ), (role["metadata"], rule)
            assert not set(rule["verbs"]) & WRITE_VERBS, (role["metadata"], rule)
            assert "*" not in rule["apiGroups"] + rule["resources"], rule
            assert not rule.get("nonResourceURLs"), rule
        assert _grants(role) == READ_GRANTS


@pytest.mark.parametrize("values", RBAC_MODES.values(), ids=RBAC_MODES.keys())
def test_the_ui_account_is_bound_to_its_read_rules_only(render: Render,
                                                        values: dict[str, Any]) -> None:
    manifests = render(values)
    for namespace in ("team-a", "b", "elsewhere", ""):
        rules = service_account_rules(manifests, NAMESPACE, UI, namespace)
        for kind in ("flows", "deployments", "schedules", "flowruns", "automations"):
            for verb in WRITE:
                assert not rules_allow(rules, Request(verb, HW, kind, namespace=namespace))
            for sub in ("status", "scale"):
                assert not rules_allow(rules, Request("patch", HW, kind, sub, namespace))
        for resource, sub in (("secrets", ""), ("configmaps", ""), ("pods", "exec"),
                              ("pods", "attach"), ("serviceaccounts", "token")):
            for verb in ("get", "list", "create"):
                assert not rules_allow(rules, Request(verb, "", resource, sub, namespace))
        assert not rules_allow(rules, Request("create", "", "pods", namespace=namespace))
        assert not rules_allow(rules, Request("delete", "", "pods", namespace=namespace))
    # Bindings of the UI name only its account; the operator's name none of the UI's roles.
    for binding in manifests:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        names = {s["name"] for s in binding["subjects"]}
        if binding["roleRef"]["name"] == UI:
            assert names == {UI}
        else:
            assert UI not in names


def test_cluster_wide_ui_reads_everywhere_through_one_cluster_role(render: Render) -> None:
    manifests = render(ENABLED)
    assert [m["kind"] for m in _ui_roles(manifests)] == ["ClusterRole"]
    rules = service_account_rules(manifests, NAMESPACE, UI, "")
    # `--all-namespaces` lists and watches across namespaces: only a ClusterRoleBinding
    # allows a request without a namespace.
    for kind in ("flows", "deployments", "schedules", "flowruns", "automations"):
        assert rules_allow(rules, Request("watch", HW, kind))
    assert rules_allow(rules, Request("list", "", "events"))
    assert rules_allow(rules, Request("get", "", "pods", "log", "data", "r-1"))


@pytest.mark.parametrize(("values", "namespaces"), [
    ({"ui": {"enabled": True, "namespaces": ["team-a", "team-b"]}}, ["team-a", "team-b"]),
    # Empty ui.namespaces follows the operator's watchNamespaces...
    ({"watchNamespaces": ["data", "ml"], **ENABLED}, ["data", "ml"]),
    # ...and ui.namespaces can narrow it.
    ({"watchNamespaces": ["data", "ml"], "ui": {"enabled": True, "namespaces": ["ml"]}},
     ["ml"]),
], ids=["ui-namespaces", "watch-namespaces", "narrower"])
def test_namespaced_ui_gets_roles_only_in_its_namespaces(
        render: Render, values: dict[str, Any], namespaces: list[str]) -> None:
    manifests = render(values)
    ui = _ui_objects(manifests)
    assert not [m for m in ui if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = [m for m in ui if m["kind"] == "Role"]
    bindings = [m for m in ui if m["kind"] == "RoleBinding"]
    assert [r["metadata"]["namespace"] for r in roles] == namespaces
    assert [b["metadata"]["namespace"] for b in bindings] == namespaces
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "Role", "name": UI}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": UI,
                                        "namespace": NAMESPACE}]
    args = _args(manifests)
    assert [args[i + 1] for i, a in enumerate(args) if a == "-n"] == namespaces
    assert "--all-namespaces" not in args
    for namespace in namespaces:
        rules = service_account_rules(manifests, NAMESPACE, UI, namespace)
        assert rules_allow(rules, Request("watch", HW, "flowruns", namespace=namespace))
    outside = service_account_rules(manifests, NAMESPACE, UI, "kube-system")
    assert not rules_allow(outside, Request("list", "", "pods", namespace="kube-system"))
    assert not rules_allow(service_account_rules(manifests, NAMESPACE, UI, ""),
                           Request("list", HW, "flowruns"))


def test_no_ui_rbac_when_rbac_is_managed_elsewhere(render: Render) -> None:
    manifests = render({"rbac": {"create": False},
                        "ui": {"enabled": True,
                               "serviceAccount": {"create": False, "name": "hw-ui-reader"}}})
    assert _ui_roles(manifests) == []
    assert [m["kind"] for m in _ui_objects(manifests)] == ["Service", "Deployment"]
    spec = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "hw-ui-reader"


def test_a_missing_ui_service_account_name_is_an_actionable_error(
        render_error: RenderError) -> None:
    error = render_error({"ui": {"enabled": True, "serviceAccount": {"create": False}}})
    assert "ui.serviceAccount.name is required when ui.serviceAccount.create is false" in error


def test_the_ui_account_is_its_own(render: Render) -> None:
    manifests = render({"ui": {"enabled": True,
                               "serviceAccount": {"annotations": {"iam": "reader"}}}})
    account = _one(manifests, "ServiceAccount")
    assert account["metadata"]["name"] == UI != OPERATOR_SA
    assert account["metadata"]["annotations"] == {"iam": "reader"}
    assert _one(manifests, "Deployment")["spec"]["template"]["spec"][
        "serviceAccountName"] == UI


# --- Service, Ingress, NetworkPolicy ----------------------------------------------------
def _selects(selector: dict[str, str], manifests: list[Manifest], component: str) -> bool:
    labels = _one(manifests, "Deployment", component)["spec"]["template"]["metadata"][
        "labels"]
    return selector.items() <= labels.items()


def test_the_service_reaches_the_ui_pods_and_only_them(render: Render) -> None:
    manifests = render({"ui": {"enabled": True, "service": {"port": 8443}}})
    service = _one(manifests, "Service")
    assert _selects(service["spec"]["selector"], manifests, "ui")
    assert not _selects(service["spec"]["selector"], manifests, "operator")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8443, "targetPort": "http",
                                         "protocol": "TCP"}]


def test_the_ingress_is_optional_and_routes_to_the_ui_service(render: Render) -> None:
    assert not [m for m in render(ENABLED) if m["kind"] == "Ingress"]
    manifests = render({"ui": {"enabled": True, "ingress": {
        "enabled": True, "className": "nginx", "host": "hw.example.com",
        "annotations": {"cert-manager.io/cluster-issuer": "le"},
        "tls": {"secretName": "hw-tls"}}}})
    ingress = _one(manifests, "Ingress")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le"}
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "hw-tls", "hosts": ["hw.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "hw.example.com"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    service = _one(manifests, "Service")
    assert path["backend"]["service"] == {"name": service["metadata"]["name"],
                                          "port": {"name": "http"}}
    bare = _one(render({"ui": {"enabled": True, "ingress": {"enabled": True}}}),
                "Ingress")["spec"]
    assert "tls" not in bare
    assert "ingressClassName" not in bare
    assert "host" not in bare["rules"][0]


def test_the_network_policy_admits_only_its_peers_to_the_ui_port(render: Render) -> None:
    extra = {"to": [{"ipBlock": {"cidr": "52.216.0.0/15"}}],
             "ports": [{"port": 443, "protocol": "TCP"}]}
    manifests = render({
        "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [6443]}},
        "ui": {"enabled": True, "networkPolicy": {"enabled": True, "extraEgress": [extra]}}})
    policy = _one(manifests, "NetworkPolicy")
    assert policy["metadata"]["name"] == UI
    spec = policy["spec"]
    assert _selects(spec["podSelector"]["matchLabels"], manifests, "ui")
    assert not _selects(spec["podSelector"]["matchLabels"], manifests, "operator")
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]
    api, dns, store = spec["egress"]
    assert api == {"ports": [{"port": 6443, "protocol": "TCP"}],
                   "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}
    assert sorted(p["protocol"] for p in dns["ports"]) == ["TCP", "UDP"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert store == extra
    # The operator's own policy (networkPolicy.enabled, off here) is independent.
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "NetworkPolicy"] == [UI]


def test_the_network_policy_can_open_the_ui_to_any_peer_and_drop_dns(render: Render) -> None:
    spec = _one(render({"ui": {"enabled": True, "networkPolicy": {
        "enabled": True, "from": [], "dns": {"enabled": False}}}}), "NetworkPolicy")["spec"]
    assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    (api,) = spec["egress"]
    assert [p["port"] for p in api["ports"]] == [443, 6443]


# --- values, GitOps ---------------------------------------------------------------------
BAD_UI_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"auth": "none"}, "auth"),
    ({"port": 0}, "port"),
    ({"namespaces": "team-a"}, "namespaces"),
    ({"namespaces": ["Team_A"]}, "namespaces"),
    ({"url": "headwater.example.com"}, "url"),
    ({"ingress": {"host": "Bad_Host"}}, "host"),
    ({"ingress": {"path": "ui"}}, "path"),
    ({"ingress": {"tls": "hw-tls"}}, "tls"),
    ({"ingres": {"enabled": True}}, "ingres"),
    ({"service": {"type": "ExternalName"}}, "type"),
    ({"networkPolicy": {"dns": True}}, "dns"),
]


@pytest.mark.parametrize(("ui", "field"), BAD_UI_VALUES, ids=[f for _, f in BAD_UI_VALUES])
def test_schema_rejects_bad_ui_values_naming_the_field(
        render_error: RenderError, ui: dict[str, Any], field: str) -> None:
    error = render_error({"ui": {"enabled": True, **ui}})
    assert "values don't meet the specifications of the schema" in error
    assert field in error


def test_every_ui_value_is_described_in_the_schema_and_the_install_docs() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())["properties"]["ui"]
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["ui"]
    install = (REPO_ROOT / "docs" / "install.md").read_text()
    leaves: list[str] = []

    def walk(values: dict[str, Any], props: dict[str, Any], path: str) -> None:
        for key, value in values.items():
            assert key in props, f"{path}{key} is not in values.schema.json"
            assert props[key].get("description"), f"{path}{key} has no description"
            if isinstance(value, dict) and value and props[key].get("properties"):
                walk(value, props[key]["properties"], f"{path}{key}.")
            else:
                leaves.append(f"{path}{key}")

    walk(defaults, schema["properties"], "ui.")
    assert len(leaves) > 20
    missing = [leaf for leaf in leaves if f"`{leaf}`" not in install]
    assert missing == [], f"not in docs/install.md's values table: {missing}"


def test_the_ui_renders_without_cluster_access_or_randomness(render: Render) -> None:
    # Argo CD and Flux render with `helm template`: no lookup, nothing random or
    # time-dependent (or every sync would show a diff), no hooks.
    for template in sorted((CHART_DIR / "templates").glob("ui-*.yaml")):
        text = template.read_text()
        for word in ("lookup", "rand", "now", "uuid", "genCA", "genSelfSigned", "helm.sh/hook"):
            assert word not in text, f"{template.name} uses {word}"
    values = {"ui": {"enabled": True, "ingress": {"enabled": True},
                     "networkPolicy": {"enabled": True}}}
    for manifest in _ui_objects(render(values)):
        assert not any(key.startswith("helm.sh/hook")
                       for key in manifest["metadata"].get("annotations") or {})
        assert manifest["kind"] in UI_KINDS


def test_cluster_scoped_ui_objects_are_release_scoped(render: Render) -> None:
    for manifest in _ui_objects(render(ENABLED)):
        if manifest["kind"].startswith("Cluster"):
            assert manifest["metadata"]["name"].startswith(RELEASE)
