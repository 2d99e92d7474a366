"""What the locker refuses, in plain words. `code` is stable: the UI translates by it and the
JSON API returns it; `message` is English for logs, technicians and API clients."""
from __future__ import annotations


class LockerError(Exception):
    code = "locker_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(LockerError):
    code = "invalid_input"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # bad_phone, bad_waybill, bad_size, bad_code_format, ...


class NotFound(LockerError):
    code = "not_found"


class WrongState(LockerError):
    code = "wrong_state"


class UnknownCourier(LockerError):
    code = "unknown_courier"


class NoFreeCompartment(LockerError):
    code = "no_free_compartment"


class WaybillInLocker(LockerError):
    """That waybill already has a parcel (or a deposit under way) in this locker."""

    code = "waybill_in_locker"

    def __init__(self, waybill: str, compartment: int) -> None:
        super().__init__(f"waybill {waybill} is already in this locker (compartment {compartment})",
                         compartment=compartment)
        self.compartment = compartment


class CodeUsed(LockerError):
    """A pickup code whose parcel has been collected, returned or refused. Counted against the
    kiosk's attempt budget like a wrong code, so it helps no one guess."""

    code = "code_used"

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"that pickup code has already been used; {attempts_left} tries left",
                         attempts_left=attempts_left)
        self.attempts_left = attempts_left


class DoorDidNotOpen(LockerError):
    code = "door_not_opened"


class CompartmentOutOfService(LockerError):
    code = "compartment_out_of_service"


class BoardUnreachable(LockerError):
    code = "board_unreachable"


class WrongCode(LockerError):
    code = "wrong_code"

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"that pickup code is not right; {attempts_left} tries left",
                         attempts_left=attempts_left)
        self.attempts_left = attempts_left


class CoolingDown(LockerError):
    code = "cooling_down"

    def __init__(self, seconds_left: int) -> None:
        super().__init__(f"too many wrong codes; try again in {seconds_left} s",
                         seconds_left=seconds_left)
        self.seconds_left = seconds_left


class TokenRefused(LockerError):
    """A pickup QR token was refused; `reason` is the token codec's code
    (malformed, forged, expired, used)."""

    code = "token_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class NoPlatformKey(LockerError):
    """Without the platform's key a pickup code could never reach the resident sealed."""

    code = "no_platform_key"


class CameraUnhealthy(LockerError):
    """Send-outs are refused while the camera covering the locker gives no picture."""

    code = "camera_unhealthy"
