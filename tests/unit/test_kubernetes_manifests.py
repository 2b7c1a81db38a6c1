"""deploy/kubernetes/ passes kubernetes-validate (PyPI; JSON schemas bundled, no network, no
cluster) in strict mode; the ServiceMonitor, a CRD it has no schema for, is checked by hand."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

KUBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def validator() -> str:
    found = shutil.which("kubernetes-validate") or shutil.which(
        "kubernetes-validate", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("kubernetes-validate is not installed (pip install kubernetes-validate; in the test extra)")
    return found


def test_manifests_validate():
    files = sorted(KUBE.glob("*.yaml"))
    assert {f.name for f in files} >= {"deployment.yaml", "service.yaml", "servicemonitor.yaml"}
    result = subprocess.run([validator(), "--strict", *map(str, files)], capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for kind in ("deployment/mojo-pool", "service/mojo-pool"):
        assert f"passed for resource {kind}" in output, output
    assert "ERROR" not in output, output


def test_deployment_matches_the_service_options():
    deployment = yaml.safe_load((KUBE / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    args = container["args"]
    value = {a.split("=")[0]: a.split("=", 1)[1] for a in args if "=" in a}
    workers, drain, grace = int(value["--workers"]), float(value["--drain-timeout"]), float(value["--drain-grace"])
    cpu = container["resources"]["limits"]["cpu"]
    assert float(cpu.removesuffix("m")) / 1000 == workers + 0.5
    assert container["resources"]["requests"]["cpu"] == cpu
    sleep = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["spec"]["terminationGracePeriodSeconds"] > sleep + grace + drain
    # Memory covers the shared rings, the three processes and every worker parsing a
    # largest-possible hostile JSON frame: at most ~18x the frame measured (10**7 one-element
    # arrays; test_service_limits 8 and the manifest's comment), 24x here for margin.
    from mojo_pool.config import Config
    mib = 1024 * 1024
    rings = Config().request_arena_bytes + workers * Config().reply_arena_bytes
    frame = int(value.get("--max-frame-bytes", Config().max_frame_bytes))
    memory = container["resources"]["limits"]["memory"]
    assert memory.endswith("Gi") and container["resources"]["requests"]["memory"] == memory
    assert int(memory.removesuffix("Gi")) * 1024 * mib >= rings + (workers + 1) * 64 * mib + workers * 24 * frame
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    service = yaml.safe_load((KUBE / "service.yaml").read_text())
    assert {"port": 6101, "targetPort": "compute"}.items() <= service["spec"]["ports"][0].items()
    monitor = yaml.safe_load((KUBE / "servicemonitor.yaml").read_text())
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
