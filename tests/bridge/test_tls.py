"""TLS with a client certificate: it works against a TLS listener, and a TLS failure is an
error that is retried, never a fall back to plain text."""
from __future__ import annotations

import datetime as dt
import ipaddress
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloud_bridge import Bridge, CommandRouter
from edge.clock import SystemClock
from edge.storage import Database
from tests.support.bridge import add_events, device_log, edge_settings, persistent_broker
from tests.support.ports import free_port

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool = False,
                 server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(folder: Path, name: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a device certificate, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate(f"{name} CA", ca_key, f"{name} CA", ca_key, ca=True)
    files = {
        "ca": (ca.public_bytes(serialization.Encoding.PEM)),
        "server_cert": _certificate("broker", server_key, f"{name} CA", ca_key, server=True)
        .public_bytes(serialization.Encoding.PEM),
        "server_key": _key_pem(server_key),
        "client_cert": _certificate("test-site.kiosk-07", client_key, f"{name} CA", ca_key)
        .public_bytes(serialization.Encoding.PEM),
        "client_key": _key_pem(client_key),
    }
    paths = {}
    for key, content in files.items():
        paths[key] = folder / f"{key}.pem"
        paths[key].write_bytes(content)
    return paths


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    return write_pki(tmp_path / "pki", "site")


@pytest.fixture
def broker(tmp_path: Path, pki):  # the plain listener plus a TLS one that wants a client certificate
    running = persistent_broker(tmp_path / "broker")
    running.tls_port = free_port()
    with running.config.open("a") as config:
        config.write(f"listener {running.tls_port} 127.0.0.1\ncafile {pki['ca']}\n"
                     f"certfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
                     "require_certificate true\nlog_type all\n")
    running.start()
    yield running
    running.stop()


def tls_bridge(tmp_path: Path, broker, pki, port: int, ca: Path | None = None):
    settings = edge_settings(tmp_path / "edge", broker, port=port, tls_ca=ca or pki["ca"],
                             tls_cert=pki["client_cert"], tls_key=pki["client_key"])
    db = Database(settings.database_path)
    db.upgrade()
    bridge = Bridge(settings, db, CommandRouter(db, SystemClock()), clock=SystemClock(), version="t")
    return bridge, db


def wait_failures(bridge: Bridge, count: int) -> None:
    deadline = time.monotonic() + 20
    while bridge.connect_failures < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_events_flow_over_tls_with_a_client_certificate(tmp_path, broker, cloud, pki):
    bridge, db = tls_bridge(tmp_path, broker, pki, broker.tls_port)
    written = add_events(db, 50)
    bridge.start()
    try:
        assert cloud.wait_for(lambda: set(written) <= set(device_log(cloud).events), 20)
        assert cloud.violations == []
    finally:
        bridge.stop()
        db.dispose()


def test_a_tls_edge_never_falls_back_to_plain_text(tmp_path, broker, cloud, pki):
    bridge, db = tls_bridge(tmp_path, broker, pki, broker.port)  # the plain listener
    add_events(db, 5)
    bridge.start()
    try:
        wait_failures(bridge, 3)
        assert bridge.connect_failures >= 3, "the TLS failure was not retried"
        assert not bridge.connected.is_set()
        assert device_log(cloud).events == {} and device_log(cloud).status is None
        assert "as test-site.kiosk-07" not in broker.log()  # no plain-text MQTT session, ever
    finally:
        bridge.stop()
        db.dispose()


def test_an_untrusted_broker_certificate_is_refused(tmp_path, broker, cloud, pki):
    stranger = write_pki(tmp_path / "other-pki", "stranger")
    bridge, db = tls_bridge(tmp_path, broker, pki, broker.tls_port, ca=stranger["ca"])
    add_events(db, 5)
    bridge.start()
    try:
        wait_failures(bridge, 2)
        assert bridge.connect_failures >= 2 and not bridge.connected.is_set()
        assert device_log(cloud).events == {}
    finally:
        bridge.stop()
        db.dispose()
