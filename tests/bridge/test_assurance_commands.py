"""Over a real Mosquitto: a one-time identity code reaches the platform sealed, the platform
opens it with its key and that code gives HIGH assurance; the cloud's iris.revoke deletes a
resident's template and is audited with the operator (ADR 0115)."""
from __future__ import annotations

import pytest

from simulators.camera import SimulatedCamera
from simulators.cloud import CloudSimulator
from simulators.people import synthetic_person
from tests.support.bridge import DEVICE, SITE, device_log
from tests.support.station import audits
from tests.support.platform import PLATFORM_PRIVATE_KEY

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
EDGE = (SITE, DEVICE)
RESIDENT = "res-1001"  # a demo resident, synced in simulate mode


@pytest.fixture
def platform(broker):
    """The platform's side, holding the private key the edge seals to."""
    simulator = CloudSimulator(broker.host, broker.port, decide=None, client_id="platform-test",
                               session_expiry_s=3600, platform_key=PLATFORM_PRIVATE_KEY).start()
    assert simulator.connected.wait(10), "the platform simulator did not connect"
    yield simulator
    simulator.stop()


def test_the_platform_opens_the_sealed_one_time_code_and_it_works_once(controller, platform):
    codes = controller.services.otp
    codes.request(RESIDENT, DEVICE)
    assert platform.wait_for(lambda: RESIDENT in platform.one_time_codes, 30)
    [event] = [e for e in device_log(platform).events.values() if e["type"] == "identity.otp_requested"]
    texted = platform.one_time_codes[RESIDENT]
    assert texted not in str(event) and len(texted) == 6 and texted.isascii() and texted.isdigit()
    assert codes.verify(RESIDENT, texted, DEVICE).value == "high"
    assert platform.violations == []


def test_the_cloud_revokes_a_template_with_iris_revoke(controller, platform):
    iris = controller.services.iris
    camera = SimulatedCamera(fps=None, seed=7)
    camera.show_eye(synthetic_person(RESIDENT))
    iris.enrol(RESIDENT, [camera.read() for _ in range(4)], consent=True, recorded_how="test",
               assurance="high")
    assert iris.is_enrolled(RESIDENT)

    sent = platform.send_command(EDGE, "iris.revoke", {"resident_id": RESIDENT, "operator": "ops-li",
                                                       "reason": "resident asked in the app"})
    [reply] = platform.wait_reply(sent, timeout=30)
    assert reply["ok"] is True and reply["data"] == {"deleted": True}
    assert not iris.is_enrolled(RESIDENT)
    [revoked] = audits(controller.db, "iris_revoke")
    assert (revoked.actor, revoked.actor_id, revoked.result) == ("remote", "ops-li", "deleted")
    [consent] = iris.consents_of(RESIDENT)
    assert consent.revoked_at is not None

    bad = platform.send_command(EDGE, "iris.revoke", {"resident_id": RESIDENT})
    [refused] = platform.wait_reply(bad, timeout=30)
    assert refused["ok"] is False
    assert platform.violations == []
