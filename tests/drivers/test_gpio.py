"""Station GPIO parts on gpiozero's MockFactory: presence wakes, buzzer and light drive their pins."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from edge.drivers.gpio import ALARM, CONFIRM, REFUSE, Beep, Light, StationIO
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(10)

PRESENCE, BUZZER, LIGHT = 17, 27, 22


def states(pin: MockPin) -> list[bool]:
    return [change.state for change in pin.states]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pins = MockFactory()
    yield pins
    pins.reset()


@pytest.fixture
def station(factory: MockFactory) -> Iterator[StationIO]:
    io = StationIO(PRESENCE, BUZZER, LIGHT, pin_factory=factory)
    yield io
    io.close()


def test_presence_calls_the_wake_callback_on_each_arrival(station: StationIO, factory: MockFactory) -> None:
    woken: list[str] = []
    station.on_presence(lambda: woken.append("wake"))
    sensor = factory.pin(PRESENCE)

    sensor.drive_high()
    sensor.drive_low()
    sensor.drive_high()

    assert woken == ["wake", "wake"]


def test_a_failing_wake_callback_does_not_break_the_sensor(station: StationIO, factory: MockFactory,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("screen gone")

    station.on_presence(broken)
    factory.pin(PRESENCE).drive_high()

    assert "presence callback failed" in caplog.text


@pytest.mark.parametrize("pattern", [CONFIRM, REFUSE])
def test_beep_sounds_its_pattern_in_the_background(station: StationIO, factory: MockFactory,
                                                   pattern: Beep) -> None:
    buzzer = factory.pin(BUZZER)
    expected = [False] + [True, False] * pattern.count

    station.beep(pattern)

    assert wait_until(lambda: states(buzzer) == expected), states(buzzer)


def test_alarm_sounds_until_switched_off(station: StationIO, factory: MockFactory) -> None:
    buzzer = factory.pin(BUZZER)
    station.alarm_on()
    assert wait_until(lambda: states(buzzer)[-3:] == [True, False, True])  # it repeats

    station.alarm_off()
    heard = states(buzzer)
    time.sleep(ALARM.on_s + ALARM.off_s + 0.1)  # a whole period: a live alarm would sound again

    assert buzzer.state is False and heard[-1] is False
    assert states(buzzer) == heard


def test_light_follows_its_state(station: StationIO, factory: MockFactory) -> None:
    light = factory.pin(LIGHT)
    station.set_light(Light.ON)
    assert light.state is True
    station.set_light(False)
    assert light.state is False
    light.clear_states()
    station.set_light("blink")
    assert wait_until(lambda: states(light)[:4] == [False, True, False, True])
    station.set_light(Light.OFF)
    assert light.state is False


def test_unknown_light_state_is_refused(station: StationIO) -> None:
    with pytest.raises(ValueError):
        station.set_light("disco")
