"""A throw-away certificate authority for trying TLS and mutual TLS locally (`semcom certs`).

It writes, into one folder:

- ``ca.pem``, ``ca-key.pem``: a CA that signs the two certificates below;
- ``server.pem``, ``server-key.pem``: one certificate for every service, valid for
  all the given host names and IP addresses (subject alternative names). It is
  good for both TLS roles, because each service is a server to the hop before it
  and a client of the hop after it (docs/security.md);
- ``client.pem``, ``client-key.pem``: for the callers outside the chain (demo,
  evaluation, health probes) when the services demand client certificates.

Keys are ECDSA P-256 and are written readable by their owner only (mode 0600).
Validity is short (30 days by default): these are for development, and a leaked
dev key should expire on its own. Production deployments bring certificates from
their own CA; the services take any PEM files.
"""

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "transmitter", "channel", "receiver")
DEFAULT_DAYS = 30
CLOCK_SKEW = datetime.timedelta(minutes=5)  # certificates start a little in the past, for hosts whose clocks lag
ORGANISATION = "gensemcom development"


@dataclass(frozen=True)
class DevCerts:
    """Where `write_dev_certs` put each file."""

    ca: Path
    ca_key: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path

    @classmethod
    def in_folder(cls, folder: Path) -> "DevCerts":
        folder = Path(folder)
        return cls(folder / "ca.pem", folder / "ca-key.pem", folder / "server.pem", folder / "server-key.pem",
                   folder / "client.pem", folder / "client-key.pem")

    def paths(self) -> list[Path]:
        return [self.ca, self.ca_key, self.server, self.server_key, self.client, self.client_key]


def subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """IP addresses as IP entries, everything else as DNS names; TLS clients match the address they dialled."""
    names: list[x509.GeneralName] = []
    for host in (h.strip() for h in hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not host or not host.isascii() or any(c.isspace() or c in "/:@" for c in host):
            raise ValueError(f"not a host name or IP address: {host!r}")
        names.append(x509.DNSName(host.lower()))
    if not names:
        raise ValueError("give at least one host name or IP address for the server certificate")
    return names


def write_dev_certs(
    folder: Path, hosts: Sequence[str] = DEFAULT_HOSTS, days: int = DEFAULT_DAYS, force: bool = False,
    now: datetime.datetime | None = None,
) -> DevCerts:
    """Create a dev CA and a server and a client certificate in ``folder``; returns the file paths.

    Refuses (FileExistsError) to replace any existing file unless ``force``: an
    overwritten CA would silently invalidate certificates already handed out.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    sans = subject_alternative_names(hosts)
    files = DevCerts.in_folder(folder)
    existing = [str(p) for p in files.paths() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    start = (now or datetime.datetime.now(datetime.timezone.utc)) - CLOCK_SKEW
    end = start + CLOCK_SKEW + datetime.timedelta(days=days)

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = _name("gensemcom dev CA")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), start, end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = _leaf(ca, ca_key, _name(str(sans[0].value)), server_key, start, end, sans,
                   [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    client = _leaf(ca, ca_key, _name("gensemcom client"), client_key, start, end, None,
                   [ExtendedKeyUsageOID.CLIENT_AUTH])

    Path(folder).mkdir(parents=True, exist_ok=True)
    for path, cert in ((files.ca, ca), (files.server, server), (files.client, client)):
        _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    for path, key in ((files.ca_key, ca_key), (files.server_key, server_key), (files.client_key, client_key)):
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _write(path, pem, 0o600)
    return files


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             start: datetime.datetime, end: datetime.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, subject: x509.Name,
          key: ec.EllipticCurvePrivateKey, start: datetime.datetime, end: datetime.datetime,
          sans: list[x509.GeneralName] | None, usages: list[x509.ObjectIdentifier]) -> x509.Certificate:
    """An end-entity certificate signed by ``ca``: it may not sign others, only prove who holds ``key``."""
    builder = (
        _builder(subject, ca.subject, key.public_key(), start, end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the first byte: a key is never readable by others, even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # an existing file keeps its old mode through O_CREAT; set it explicitly
        f.write(data)
