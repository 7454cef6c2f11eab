"""The deployment files under deploy/, checked offline: Kubernetes manifests against the API
schemas (kubernetes-validate) and against what dynamokv needs, the config they carry through
dynamokv's own loader, the pod start and preStop scripts run against stubs, the systemd unit
through systemd-analyze, and the Dockerfile's references."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynamokv.errors import ConfigError
from dynamokv.runtime import config_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFEST = DEPLOY / "kubernetes" / "dynamokv.yaml"
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the manifests")


def docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def kind(name: str) -> list[dict[str, Any]]:
    return [d for d in docs() if d["kind"] == name]


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not "
                             "installed (pip install kubernetes-validate)")
    for doc in docs():
        try:
            kv.validate(doc, "1.30.0", strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}")


def test_statefulset_is_wired_to_a_headless_service_with_a_volume_each() -> None:
    (sts,) = kind("StatefulSet")
    services = {s["metadata"]["name"]: s for s in kind("Service")}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    # Pods must resolve each other while joining, before any of them is ready.
    assert headless["spec"]["publishNotReadyAddresses"] is True
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert headless["spec"]["selector"].items() <= labels.items()
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/dynamokv"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DYNAMOKV_SERVICE"] == headless["metadata"]["name"]


def test_probes_and_hooks_use_the_nodes_own_health_and_drain() -> None:
    (sts,) = kind("StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    node = _manifest_config()
    assert ports["metrics"] == int(node["metrics"].rpartition(":")[2])
    assert ports["peer"] == int(node["listen"].rpartition(":")[2])
    assert ports["dynamodb"] == int(node["http"].rpartition(":")[2])
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert container["command"] == ["dynamokv-k8s-start"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["dynamokv-k8s-prestop"]
    drain_s = int({e["name"]: e.get("value") for e in container["env"]}["DYNAMOKV_DRAIN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > drain_s  # the drain ends before the kill
    # The hook may read exactly the StatefulSet, with the pod's own service account.
    (role,) = kind("Role")
    (rule,) = role["rules"]
    assert rule["resources"] == ["statefulsets"] and rule["verbs"] == ["get"]
    assert rule["resourceNames"] == [sts["metadata"]["name"]]
    (binding,) = kind("RoleBinding")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]


def _manifest_config() -> dict[str, Any]:
    (cm,) = kind("ConfigMap")
    return dict(__import__("tomllib").loads(cm["data"]["node.toml"]))


@pytest.mark.parametrize("source", ["configmap", "systemd"])
def test_shipped_configs_load_with_dynamokvs_own_loader(source: str, tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    if source == "configmap":
        (cm,) = kind("ConfigMap")
        path.write_text(cm["data"]["node.toml"])
    else:
        shutil.copy(DEPLOY / "systemd" / "node.toml", path)
    options = config_file.load(path)
    assert options["listen"] == "0.0.0.0:7001" and options["data_dir"] == Path(
        "/var/lib/dynamokv")
    path.write_text(path.read_text() + "\nlisten_on = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'listen_on'"):
        config_file.load(path)  # the loader is strict, so the pass above means something


# ---- the pod scripts, against stubs -----------------------------------------------------------


def _stub_dynamokv(bindir: Path, ring_ok: bool) -> Path:
    """A ``dynamokv`` that logs its argv; ``ring`` succeeds only if ``ring_ok``."""
    log = bindir / "calls.log"
    script = bindir / "dynamokv"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n"
                      f"case \"$1\" in ring) exit {0 if ring_ok else 1};; esac\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def _run_start(tmp_path: Path, pod: str, *, ring_ok: bool, ring_file: bool = False) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = _stub_dynamokv(bindir, ring_ok)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if ring_file:
        (data / "ring.bin").write_bytes(b"x")
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "POD_NAME": pod, "POD_NAMESPACE": "prod",
           "DYNAMOKV_DATA_DIR": str(data)}
    proc = subprocess.run(["sh", str(DEPLOY / "bin" / "dynamokv-k8s-start")], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return log.read_text().splitlines()[-1]


def _flag(argv: str, flag: str) -> str:
    words = argv.split(" ")  # an empty argument shows as an empty word
    return words[words.index(flag) + 1]


def test_start_script_names_the_node_after_its_pod_and_seeds_from_the_others(
        tmp_path: Path) -> None:
    argv = _run_start(tmp_path, "dynamokv-2", ring_ok=True)
    assert argv.startswith("node start --config /etc/dynamokv/node.toml")
    assert _flag(argv, "--id") == "dynamokv-2"
    assert _flag(argv, "--advertise") == "dynamokv-2.dynamokv.prod.svc.cluster.local:7001"
    assert _flag(argv, "--seeds") == ("dynamokv-0.dynamokv.prod.svc.cluster.local:7001,"
                                      "dynamokv-1.dynamokv.prod.svc.cluster.local:7001")


def test_pod_zero_starts_a_cluster_only_when_no_other_pod_runs_one(tmp_path: Path) -> None:
    for sub in "abc":
        (tmp_path / sub).mkdir()
    fresh = _run_start(tmp_path / "a", "dynamokv-0", ring_ok=False)
    assert _flag(fresh, "--seeds") == ""  # no seeds: it starts a new cluster
    replaced = _run_start(tmp_path / "b", "dynamokv-0", ring_ok=True)
    assert "dynamokv-1.dynamokv.prod.svc.cluster.local:7001" in _flag(replaced, "--seeds")
    restarted = _run_start(tmp_path / "c", "dynamokv-0", ring_ok=False, ring_file=True)
    assert "dynamokv-1" in _flag(restarted, "--seeds")  # it has a ring: seeds do no harm


class _FakeApi(http.server.BaseHTTPRequestHandler):
    replicas = 3

    def do_GET(self) -> None:
        body = json.dumps({"spec": {"replicas": self.replicas}}).encode()
        ok = self.path == "/apis/apps/v1/namespaces/prod/statefulsets/dynamokv"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("pod", "replicas", "drains"), [
    ("dynamokv-2", 3, False),  # a restart or an upgrade: keep the membership
    ("dynamokv-2", 2, True),  # scaled from 3 to 2: this pod goes away for good
    ("dynamokv-0", 1, False),
])
def test_prestop_drains_only_on_scale_down(fake_api: str, tmp_path: Path, pod: str,
                                           replicas: int, drains: bool) -> None:
    _FakeApi.replicas = replicas
    log = _stub_dynamokv(tmp_path, ring_ok=True)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "POD_NAME": pod,
           "POD_NAMESPACE": "prod", "KUBERNETES_API": fake_api}
    proc = subprocess.run([sys.executable, str(DEPLOY / "bin" / "dynamokv-k8s-prestop")],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text() if log.exists() else ""
    assert (f"drain {pod} --wait" in calls) is drains


def test_prestop_keeps_membership_when_the_api_cannot_be_read(tmp_path: Path) -> None:
    log = _stub_dynamokv(tmp_path, ring_ok=True)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "POD_NAME": "dynamokv-5",
           "POD_NAMESPACE": "prod", "KUBERNETES_API": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, str(DEPLOY / "bin" / "dynamokv-k8s-prestop")],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and "not draining" in proc.stderr
    assert not log.exists()


# ---- systemd and Docker -----------------------------------------------------------------------


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "dynamokv.service"
    # systemd-analyze checks that ExecStart's program exists: point it at one that does.
    unit.write_text((DEPLOY / "systemd" / "dynamokv.service").read_text().replace(
        "/usr/local/bin/dynamokv", sys.executable))
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if str(unit) in line or "dynamokv.service" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_dockerfile_copies_what_exists_and_runs_a_node() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0].startswith("FROM python:3.11")
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"{line}: {source} is not in the repository"
    entry = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert json.loads(entry.removeprefix("ENTRYPOINT"))[:3] == ["dynamokv", "node", "start"]
    exposed = next(line for line in lines if line.startswith("EXPOSE")).split()[1:]
    assert exposed == ["7001", "8001", "9101"]
