"""The station's GPIO parts: presence sensor (wakes the kiosk), buzzer, status light.

Built from BCM pin numbers and an optional gpiozero pin factory, so tests pass
gpiozero.pins.mock.MockFactory and the box uses gpiozero's default (lgpio on a Pi).
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import NamedTuple

from gpiozero import LED, Buzzer, DigitalInputDevice, PWMLED
from gpiozero.pins import Factory

log = logging.getLogger("edge.drivers.gpio")


class Beep(NamedTuple):
    on_s: float
    off_s: float
    count: int | None  # None: until alarm_off()


CONFIRM = Beep(0.08, 0.0, 1)  # a door opened, a code was accepted
REFUSE = Beep(0.12, 0.08, 3)  # wrong code, door would not open
ALARM = Beep(0.5, 0.5, None)


class Light(str, enum.Enum):
    OFF = "off"
    ON = "on"
    BLINK = "blink"


class StationIO:
    def __init__(self, presence_pin: int, buzzer_pin: int, light_pin: int,
                 pin_factory: Factory | None = None) -> None:
        # Presence modules (PIR, microwave radar) hold a clean active-high output themselves.
        self._presence = DigitalInputDevice(presence_pin, pull_up=False, pin_factory=pin_factory)
        self._buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
        self._light = LED(light_pin, pin_factory=pin_factory)

    def on_presence(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from gpiozero's thread) each time someone comes near."""
        def wake() -> None:
            try:
                callback()
            except Exception:  # a failing listener must not take the sensor thread down
                log.exception("presence callback failed")

        self._presence.when_activated = wake

    def beep(self, pattern: Beep = CONFIRM) -> None:
        """Sound a pattern in the background; returns at once."""
        self._buzzer.beep(on_time=pattern.on_s, off_time=pattern.off_s, n=pattern.count,
                          background=True)

    def alarm_on(self) -> None:
        self.beep(ALARM)

    def alarm_off(self) -> None:
        self._buzzer.off()

    def set_light(self, state: Light | str | bool) -> None:
        light = Light.ON if state is True else Light.OFF if state is False else Light(state)
        if light is Light.ON:
            self._light.on()
        elif light is Light.BLINK:
            self._light.blink(on_time=0.5, off_time=0.5, background=True)
        else:
            self._light.off()

    def close(self) -> None:
        for device in (self._presence, self._buzzer, self._light):
            device.close()


class NirIlluminator:
    """Two near-infrared LEDs beside the iris camera's lens, each on a PWM pin (through a
    driver transistor: NIR LEDs draw more than a pin gives). Implements
    edge.drivers.camera.Illuminator: "left" lights the left LED at the dim level,
    "right" the right LED at full power, "off" neither."""

    DIM = 0.4

    def __init__(self, left_pin: int, right_pin: int, pin_factory: Factory | None = None) -> None:
        self._left = PWMLED(left_pin, pin_factory=pin_factory)
        self._right = PWMLED(right_pin, pin_factory=pin_factory)
        self.pattern = "off"

    def set_pattern(self, pattern: str) -> None:
        levels = {"left": (self.DIM, 0.0), "right": (0.0, 1.0), "off": (0.0, 0.0)}
        if pattern not in levels:
            raise ValueError(f"unknown illuminator pattern {pattern!r}")
        self._left.value, self._right.value = levels[pattern]
        self.pattern = pattern

    def close(self) -> None:
        self._left.close()
        self._right.close()
