"""A tiny client for the standard gRPC health service (grpc.health.v1).

Container health checks and ``semcom health ADDR`` both need to ask a running
service "are you serving?". Doing that with a Python module (instead of a
``grpc_health_probe`` binary) keeps the images free of extra downloads: the
module ships inside the package every image already installs.

Run it as ``python -m gensemcom.shared.healthprobe HOST:PORT [--service NAME]``;
it prints one line and exits 0 when the service reports SERVING, 1 otherwise.
Against a TLS service add ``--tls-ca CA.pem`` (and ``--tls-cert``/``--tls-key``
under mutual TLS). No token is needed: the health check is exempt from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gensemcom.shared.security import channel_credentials

SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)


def probe(address: str, service: str = "", timeout_s: float = 2.0,
          credentials: grpc.ChannelCredentials | None = None) -> str:
    """Ask ``address`` for the health of ``service`` and name the answer.

    Returns the serving status name (``SERVING``, ``NOT_SERVING``, ...) or, when
    the call itself fails, the gRPC status code name (``UNAVAILABLE`` for a
    closed port, ``NOT_FOUND`` for a service the server does not know,
    ``DEADLINE_EXCEEDED``). A name rather than a bool lets the caller print why a
    check failed. The empty service name asks about the server as a whole.
    ``credentials`` (from ``security.channel_credentials``) make it a TLS probe.
    """
    if not address.strip():
        raise ValueError("address must be HOST:PORT, got an empty string")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    request = health_pb2.HealthCheckRequest(service=service)
    # A probe talks to one service directly; an HTTP_PROXY that Docker injects
    # into containers must not reroute it.
    options = [("grpc.enable_http_proxy", 0)]
    channel = grpc.insecure_channel(address, options=options) if credentials is None \
        else grpc.secure_channel(address, credentials, options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(request, timeout=timeout_s)
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def check(address: str, service: str = "", timeout_s: float = 2.0,
          credentials: grpc.ChannelCredentials | None = None) -> bool:
    """True when ``service`` at ``address`` answers SERVING within ``timeout_s``."""
    return probe(address, service, timeout_s, credentials) == SERVING


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print ``ADDRESS [SERVICE] STATUS``; 0 when SERVING, else 1."""
    parser = argparse.ArgumentParser(
        prog="python -m gensemcom.shared.healthprobe",
        description="Query the grpc.health.v1 service of a running gensemcom service.",
    )
    parser.add_argument("address", help="HOST:PORT of the service, e.g. localhost:50051")
    parser.add_argument("--service", default="", help="service name to ask about; empty means the whole server")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA the service's certificate chains to: probe over TLS")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate, for a service that demands one")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    if (args.tls_cert or args.tls_key) and not args.tls_ca:
        parser.error("--tls-cert and --tls-key need --tls-ca")
    try:
        credentials = channel_credentials(args.tls_ca, args.tls_cert, args.tls_key) if args.tls_ca else None
        status = probe(args.address, args.service, args.timeout, credentials)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    target = f"{args.address} {args.service}" if args.service else args.address
    print(f"{target} {status}")
    return 0 if status == SERVING else 1


if __name__ == "__main__":
    raise SystemExit(main())
