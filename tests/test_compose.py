"""The container wiring: docker-compose files, the Dockerfile, and the health probe.

Three layers of checks:
1. docker-compose.yml read with PyYAML (always runs): the chain, the ports, the
   health checks and the GPU opt-in have the shape the services rely on, and
   agree with docker/Dockerfile.
2. The real Compose CLI (`docker compose` v2 or `docker-compose` v1), where one
   is installed: it must accept the files and resolve them to the same shape.
3. gensemcom.shared.healthprobe against an in-process gRPC health server: the
   exact command the health checks run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gensemcom.shared import healthprobe

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
GPU_FILE = REPO / "docker-compose.gpu.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

PORTS = {"transmitter": 50051, "channel": 50052, "receiver": 50053}
PREFIXES = {"transmitter": "SEMCOM_TX_", "channel": "SEMCOM_CH_", "receiver": "SEMCOM_RX_"}
# Each service forwards to the next one and must wait until it is healthy.
NEXT_HOP = {"transmitter": "channel", "channel": "receiver"}
# Settings every service reads, besides its own prefixed ones.
SHARED_SETTINGS = {"SEMCOM_SHARED_DATA", "SEMCOM_OUT"}
GPU_RESERVATION = {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


def probe_command(service: str) -> list[str]:
    """The health check every image and compose service runs for ``service``."""
    return ["python", "-m", "gensemcom.shared.healthprobe", f"localhost:{PORTS[service]}"]


def port_bindings(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host_ip, published, target) for each port, from short or long syntax.

    The file uses the short form; Compose v1 echoes it back as
    ``127.0.0.1:50051:50051/tcp`` and Compose v2 as a mapping.
    """
    bindings = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            bindings.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        host_ip, published, target = str(port).split("/")[0].rsplit(":", 2)
        bindings.append((host_ip, int(published), int(target)))
    return bindings


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """The service's environment as a mapping (Compose also allows a KEY=VALUE list)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    """The device reservations of a service, empty when it reserves none."""
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return reservations.get("devices", [])


def assert_chain_shape(services: dict[str, Any]) -> None:
    """What both the raw file and the CLI's resolved config must show."""
    assert set(services) == set(PORTS)
    for name, port in PORTS.items():
        service = services[name]
        assert port_bindings(service) == [("127.0.0.1", port, port)], name
        assert service["healthcheck"]["test"] == ["CMD", *probe_command(name)]
        assert service["restart"] == "unless-stopped"
        # Compose v2 adds keys such as `required: true`; the condition is what matters.
        depends_on = service.get("depends_on", {})
        assert {hop: spec["condition"] for hop, spec in depends_on.items()} == (
            {NEXT_HOP[name]: "service_healthy"} if name in NEXT_HOP else {}
        )
        assert gpu_devices(service) == [], "a GPU reservation in the base file breaks CPU-only hosts"


# ---------------------------------------------------------------- the files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_has_the_chain_shape(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "Compose v2 warns that `version` is obsolete"
    assert_chain_shape(compose["services"])


def test_each_service_listens_where_its_caller_sends(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, port in PORTS.items():
        env = environment(services[name])
        prefix = PREFIXES[name]
        assert env[f"{prefix}HOST"] == "0.0.0.0"
        assert int(env[f"{prefix}PORT"]) == port
        if name in NEXT_HOP:
            downstream = NEXT_HOP[name]
            assert env[f"{prefix}NEXT_HOP"] == f"{downstream}:{PORTS[downstream]}"
        foreign = [key for key in env if not key.startswith(prefix) and key not in SHARED_SETTINGS]
        assert foreign == [], f"{name} has settings it does not read"
    assert environment(services["receiver"])["SEMCOM_RX_DEVICE"] == "${SEMCOM_RX_DEVICE:-auto}"


def test_data_and_output_volumes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        volumes = service["volumes"]
        env = environment(service)
        assert "../shared/data:/data:ro" in volumes
        assert env["SEMCOM_SHARED_DATA"] == "/data"
        assert f"outputs:{env['SEMCOM_OUT']}" in volumes, name
    assert "outputs" in compose["volumes"]
    # The relative path names the real data folder beside the repository.
    assert (COMPOSE_FILE.parent / "../shared/data/weights").is_dir()


def test_gpu_is_an_opt_in_override_for_the_receiver_only() -> None:
    override = yaml.safe_load(GPU_FILE.read_text())
    assert list(override["services"]) == ["receiver"]
    assert gpu_devices(override["services"]["receiver"]) == [GPU_RESERVATION]


def dockerfile_stages() -> dict[str, str]:
    """Stage name -> its instructions, with line continuations joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, str] = {}
    for block in re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]:
        header, _, body = block.partition("\n")
        stages[header.split(" AS ")[-1].strip()] = body
    return stages


def instruction(stage: str, keyword: str) -> str:
    match = re.search(rf"^{keyword} (.+)$", stage, flags=re.MULTILINE)
    assert match, f"no {keyword} in stage"
    return match.group(1).strip()


def test_dockerfile_targets_agree_with_compose(compose: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    # The base image stays a build argument: offline builds pass a local one.
    assert re.search(r"^ARG BASE_IMAGE=\S+\n+FROM \$\{BASE_IMAGE\} AS app$", text, flags=re.MULTILINE)
    stages = dockerfile_stages()
    assert re.search(r"^USER semcom$", stages["app"], flags=re.MULTILINE), "services must not run as root"
    for name, port in PORTS.items():
        stage = stages[name]
        assert compose["services"][name]["build"]["target"] == name
        assert int(instruction(stage, "EXPOSE")) == port
        assert json.loads(instruction(stage, "CMD")) == ["semcom", name, "serve"]
        healthcheck = instruction(stage, "HEALTHCHECK")
        assert json.loads(healthcheck.split(" CMD ", 1)[1]) == probe_command(name)
        assert f"{PREFIXES[name]}PORT={port}" in stage


def test_dockerignore_lets_the_build_inputs_through() -> None:
    text = DOCKERFILE.read_text()
    sources = {src for line in re.findall(r"^COPY (.+) \S+$", text, flags=re.MULTILINE) for src in line.split()}
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    assert sources == {"pyproject.toml", "README.md", "gensemcom"}
    assert sources <= allowed
    assert all((REPO / source).exists() for source in sources)


# ---------------------------------------------------------- the Compose CLI


def compose_cli() -> list[str] | None:
    """``docker compose`` (v2) when the plugin works, else ``docker-compose`` (v1), else None."""
    if shutil.which("docker"):
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if v2.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


COMPOSE_CLI = compose_cli()
needs_cli = pytest.mark.skipif(
    COMPOSE_CLI is None,
    reason="neither `docker compose` (v2) nor `docker-compose` (v1) is installed; "
    "the PyYAML tests above still check the file",
)


def run_config(*files: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """``<compose> -f FILE... config`` with no SEMCOM_* settings from this shell."""
    assert COMPOSE_CLI is not None
    args = [*COMPOSE_CLI, *(arg for f in files for arg in ("-f", str(f))), "config"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEMCOM_")}
    return subprocess.run([*args, "-q"] if quiet else args, capture_output=True, text=True, env=env, cwd=REPO)


@needs_cli
def test_cli_accepts_the_compose_files() -> None:
    for files in [(COMPOSE_FILE,), (COMPOSE_FILE, GPU_FILE)]:
        result = run_config(*files, quiet=True)
        assert result.returncode == 0, result.stderr


@needs_cli
def test_cli_resolves_the_chain() -> None:
    result = run_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert_chain_shape(services)
    for name, service in services.items():
        assert Path(service["build"]["context"]) == REPO
        assert service["build"]["target"] == name
    assert environment(services["receiver"])["SEMCOM_RX_DEVICE"] == "auto"


@needs_cli
def test_cli_merges_the_gpu_override_into_the_receiver() -> None:
    result = run_config(COMPOSE_FILE, GPU_FILE)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert [{**device, "count": int(device["count"])} for device in gpu_devices(services["receiver"])] == [
        GPU_RESERVATION
    ]
    assert gpu_devices(services["transmitter"]) == gpu_devices(services["channel"]) == []
    # The override adds the GPU and changes nothing else about the service.
    assert port_bindings(services["receiver"]) == [("127.0.0.1", 50053, 50053)]


# ------------------------------------------------------------ the health probe

RECEIVER_SERVICE = "semcom.v1.Receiver"


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    """A gRPC server on a free loopback port with only the standard health service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set(RECEIVER_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_follows_the_serving_status(health_server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = health_server
    assert healthprobe.check(address)
    assert not healthprobe.check(address, RECEIVER_SERVICE)
    assert healthprobe.probe(address, RECEIVER_SERVICE) == "NOT_SERVING"
    servicer.set(RECEIVER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    assert healthprobe.check(address, RECEIVER_SERVICE)
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert not healthprobe.check(address)


def test_unknown_service_is_not_healthy(health_server: tuple[str, health.HealthServicer]) -> None:
    address, _ = health_server
    assert healthprobe.probe(address, "semcom.v1.Nothing") == "NOT_FOUND"
    assert not healthprobe.check(address, "semcom.v1.Nothing")


def test_main_prints_one_line_and_sets_the_exit_code(
    health_server: tuple[str, health.HealthServicer], capsys: pytest.CaptureFixture[str]
) -> None:
    address, _ = health_server
    assert healthprobe.main([address]) == 0
    assert capsys.readouterr().out == f"{address} SERVING\n"
    assert healthprobe.main([address, "--service", RECEIVER_SERVICE]) == 1
    assert capsys.readouterr().out == f"{address} {RECEIVER_SERVICE} NOT_SERVING\n"


def test_module_command_is_a_working_healthcheck(health_server: tuple[str, health.HealthServicer]) -> None:
    address, _ = health_server
    command = [sys.executable, "-m", "gensemcom.shared.healthprobe"]
    serving = subprocess.run([*command, address], capture_output=True, text=True, cwd=REPO)
    assert (serving.returncode, serving.stdout) == (0, f"{address} SERVING\n")
    down = subprocess.run([*command, f"127.0.0.1:{closed_port()}"], capture_output=True, text=True, cwd=REPO)
    assert down.returncode == 1
    assert down.stdout.endswith(" UNAVAILABLE\n")


def test_unreachable_address_fails_fast() -> None:
    start = time.monotonic()
    assert healthprobe.probe(f"127.0.0.1:{closed_port()}", timeout_s=2.0) == "UNAVAILABLE"
    assert time.monotonic() - start < 1.0


def test_silent_server_fails_at_the_timeout() -> None:
    """A port that accepts TCP but never speaks gRPC must not hang the probe."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        start = time.monotonic()
        status = healthprobe.probe(f"127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.5)
        elapsed = time.monotonic() - start
    assert status == "DEADLINE_EXCEEDED"
    assert 0.5 <= elapsed < 1.5


@pytest.mark.parametrize(
    ("address", "timeout_s"), [("", 1.0), ("  ", 1.0), ("localhost:1", 0.0), ("localhost:1", -1.0)]
)
def test_bad_arguments_raise_value_error(address: str, timeout_s: float) -> None:
    with pytest.raises(ValueError):
        healthprobe.probe(address, timeout_s=timeout_s)
