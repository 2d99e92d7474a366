"""`update.available` through a real broker: the edge fetches the bundle over HTTPS from an
allowed host (a server on 127.0.0.1 with its own certificate), checks the sha256 and the
signature, and installs it; a host not allowed, or a wrong checksum, installs nothing."""
from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import sysconfig
import threading
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from edge.app import build_controller
from edge.ops.fetch import fetch_bundle
from edge.ops.update import UpdateError, make_bundle
from tests.support.bridge import DEVICE, SITE, edge_settings
from tests.support.release import build_wheel
from tests.support.station import wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(300)]
EDGE = (SITE, DEVICE)


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_server(tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    cert, key = self_signed(tmp_path)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", served, cert
    server.shutdown()
    server.server_close()


def test_the_edge_fetches_checks_and_installs_a_bundle_the_cloud_names(tmp_path, broker, cloud, https_server):
    base_url, served, ca = https_server
    signing = Ed25519PrivateKey.generate()
    public = tmp_path / "release.pub.pem"
    public.write_bytes(signing.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    bundle = make_bundle([build_wheel(tmp_path, "1.0.5")], "1.0.5", signing, served / "edge-1.0.5.tar.gz")
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    settings = edge_settings(tmp_path / "edge", broker)
    update = {"public_key": public, "prefix": tmp_path / "opt-edge", "restart_command": "true",
              "allowed_hosts": ["127.0.0.1"], "ca_file": ca,
              "shared_site_packages": [Path(sysconfig.get_paths()["purelib"])]}
    settings.update = settings.update.model_copy(update=update)
    controller = build_controller(settings)
    controller.start()
    try:
        assert cloud.wait_for(lambda: controller.services.bridge.connected.is_set(), 30)
        elsewhere = cloud.send_command(EDGE, "update.available", {
            "version": "1.0.5", "url": "https://updates.invalid/edge-1.0.5.tar.gz", "sha256": sha})
        [refused] = cloud.wait_reply(elsewhere)
        assert refused["ok"] is False and refused["error"]["code"] == "host_not_allowed"

        accepted = cloud.send_command(EDGE, "update.available", {
            "version": "1.0.5", "url": f"{base_url}/edge-1.0.5.tar.gz", "sha256": sha})
        assert cloud.wait_reply(accepted)[0]["data"] == {"accepted": True, "version": "1.0.5"}
        # The controller fetched and verified it, and left it for edge-update.path to see.
        downloads = tmp_path / "edge" / "updates"
        wait_until(lambda: [p.name for p in downloads.rglob("*") if p.is_file()] == ["1.0.5.bundle"],
                   timeout=60, what="the bundle handed over")
    finally:
        controller.stop()

    # What edge-update.service runs, as root, with the station's settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("EDGE_")}
    env.update(EDGE_DATA_DIR=str(tmp_path / "edge"), EDGE_UPDATE__PUBLIC_KEY=str(public),
               EDGE_UPDATE__PREFIX=str(tmp_path / "opt-edge"), EDGE_UPDATE__RESTART_COMMAND="true",
               EDGE_UPDATE__SHARED_SITE_PACKAGES=json.dumps(update["shared_site_packages"], default=str))
    installed = subprocess.run([sys.executable, "-m", "edge", "update", "install-ready"], env=env,
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    assert os.readlink(tmp_path / "opt-edge" / "current") == "releases/1.0.5"
    state = json.loads((tmp_path / "opt-edge" / "state.json").read_text())
    assert state["pending"] == "1.0.5"  # kept only once its health check passes after the restart
    assert not list(downloads.rglob("*.bundle"))


def test_a_wrong_checksum_or_plain_http_fetches_nothing(tmp_path, https_server):
    base_url, served, ca = https_server
    (served / "b.tar.gz").write_bytes(b"not the bundle the command named")
    with pytest.raises(UpdateError, match="does not match the sha256"):
        fetch_bundle(f"{base_url}/b.tar.gz", "0" * 64, ["127.0.0.1"], tmp_path / "dl", ca)
    with pytest.raises(UpdateError, match="https only"):
        fetch_bundle(f"http://127.0.0.1:1/b.tar.gz", "0" * 64, ["127.0.0.1"], tmp_path / "dl", ca)
    with pytest.raises(UpdateError, match="cannot fetch"):  # the system's CAs do not know this one
        fetch_bundle(f"{base_url}/b.tar.gz", "0" * 64, ["127.0.0.1"], tmp_path / "dl", None)
    assert list((tmp_path / "dl").glob("*")) == []
