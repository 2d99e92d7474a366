"""Every setting the controller reads, from one TOML file and the environment.

Precedence (highest first): values passed in code, `EDGE_<SECTION>__<KEY>` environment
variables, the TOML file (`edge --config FILE`, default /etc/edge/edge.toml when present),
then the defaults below. A bad value stops start-up with one line naming the setting.
"""
from __future__ import annotations

import contextvars
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from edge.drivers.lockboard.kerong import REPLY_TIMEOUT_S
from edge.settings_sections import (
    BackupSettings,
    CommunitySettings,
    CompartmentSpec,
    CourierEntry,
    GpioSettings,
    JournalSettings,
    KioskSettings,
    OutboxSettings,
    RecordsSettings,
    Size,  # noqa: F401  (re-exported: edge.locker.deposits imports it from here)
    UpdateSettings,
)
from edge.settings_sections import Section as _Section

DEFAULT_CONFIG_FILE = Path("/etc/edge/edge.toml")
LOCKS_PER_BOARD = 16

# Which TOML file the next Settings() reads; set by load_settings().
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it in one line."""


class SiteSettings(_Section):
    station_name: str = "社区服务站"
    station_name_en: str = "Community Service Station"
    opening_hours: str = "08:30-20:00"
    address: str = ""  # the station's address, as residents are told it in parcel notices
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import available_timezones

        if value not in available_timezones():
            raise ValueError("timezone must be an IANA name such as Asia/Shanghai")
        return value


class LockerSettings(_Section):
    serial_url: str | None = None  # any pyserial URL; None with --simulate means "start the simulator"
    boards: Annotated[list[int], NoDecode] = [0, 1]
    closed_bit: int = Field(1, ge=0, le=1)  # not Literal[0, 1]: that refuses "0" from the environment
    baudrate: int = 19200
    reply_timeout_s: float = Field(REPLY_TIMEOUT_S, gt=0)  # the driver's default
    unlock_gap_s: float = Field(0.1, ge=0)
    rs485_rts: bool = False
    # Firmware that echo a status frame after an unlock: listen this long before speaking
    # again, so the next request does not collide with the echo on half-duplex RS-485.
    unlock_echo_window_s: float = Field(0.0, ge=0, le=0.1)
    poll_interval_s: float = Field(0.25, gt=0)
    retention_hours: float = Field(72, gt=0)
    free_storage_hours: float = Field(24, gt=0)  # no charge before this; told in parcel.deposited
    door_left_open_s: float = Field(60, gt=0)
    deposit_close_timeout_s: float = Field(300, gt=0)
    wrong_code_limit: int = Field(5, ge=1)
    wrong_code_window_s: float = Field(600, gt=0)
    wrong_code_cooldown_s: float = Field(300, gt=0)
    # Per-lock sizes when no explicit layout is given: locks 1-6 small, 7-12 medium, 13-16 large.
    default_sizes: str = "SSSSSSMMMMMMLLLL"
    compartments: list[CompartmentSpec] = []
    # Courier codes typed at the kiosk, code -> {"id": ..., "company": ...}, or the older
    # code -> courier id (company = the id) (EDGE_LOCKER__COURIERS='{"code": "id"}').
    couriers: dict[str, str | CourierEntry] = {}
    # Courier log-in attempts, per kiosk and per code (ADR 0115).
    courier_login_limit: int = Field(5, ge=1)
    courier_login_window_s: float = Field(600, gt=0)
    courier_login_cooldown_s: float = Field(300, gt=0)
    # Sending (寄件): courier companies residents may send with (company id -> name shown); a
    # courier collects only their own company's sends (the company in `couriers`).
    send_companies: dict[str, str] = {}
    station_camera: str | None = None  # the camera covering the locker (OpenCV device or URL)
    # One code, every parcel: a resident's pickup code opens all their parcels here, one door
    # after another (the screen says which is next). Off by default: a code then opens one door.
    one_code_all_parcels: bool = False

    @field_validator("boards", mode="before")
    @classmethod
    def _parse_boards(cls, value: Any) -> Any:
        """Accept a count ("2" = boards 0 and 1), "0,1", "[0, 1]" or a list."""
        if isinstance(value, int):
            return list(range(value))
        if isinstance(value, str):
            text = value.strip().strip("[]").strip()
            if text.isascii() and text.isdigit() and "," not in value:
                return list(range(int(text)))
            return [int(part) for part in text.split(",") if part.strip()]
        return value

    @field_validator("boards")
    @classmethod
    def _check_boards(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= b <= 15 for b in value) or len(set(value)) != len(value):
            raise ValueError("boards must be distinct addresses 0-15, at least one")
        return value

    @field_validator("default_sizes")
    @classmethod
    def _check_sizes(cls, value: str) -> str:
        if len(value) != LOCKS_PER_BOARD or set(value) - {"S", "M", "L"}:
            raise ValueError("default_sizes must be 16 letters from S, M, L")
        return value

    @model_validator(mode="after")
    def _check_layout(self) -> "LockerSettings":
        numbers = [c.number for c in self.compartments]
        pairs = [(c.board, c.lock) for c in self.compartments]
        if len(set(numbers)) != len(numbers) or len(set(pairs)) != len(pairs):
            raise ValueError("compartments repeat a number or a board/lock pair")
        if any(c.board not in self.boards for c in self.compartments):
            raise ValueError("a compartment names a board that is not in boards")
        return self

    def courier_by_code(self, code: str) -> CourierEntry | None:
        """The courier a code names (the old code -> id form reads as its own company)."""
        entry = self.couriers.get(code)
        return CourierEntry(id=entry) if isinstance(entry, str) else entry

    def company_of(self, courier_id: str) -> str:
        """The company a courier id belongs to; an id no code names is its own company."""
        for code in self.couriers:
            entry = self.courier_by_code(code)
            if entry is not None and entry.id == courier_id:
                return entry.company_name
        return courier_id

    def layout(self) -> list[CompartmentSpec]:
        """The site's compartments: explicit ones, else N -> board (N-1)//16, lock (N-1)%16."""
        if self.compartments:
            return sorted(self.compartments, key=lambda c: c.number)
        return [
            CompartmentSpec(
                number=index * LOCKS_PER_BOARD + lock + 1,
                board=board,
                lock=lock,
                size=self.default_sizes[lock],  # type: ignore[arg-type]
            )
            for index, board in enumerate(sorted(self.boards))
            for lock in range(LOCKS_PER_BOARD)
        ]

    # --- lock-board protocol per bus (ADR 0130) ---------------------------------------------
    protocol: Literal["kerong", "modbus"] = "kerong"
    # Modbus RTU relay boards: unit id of each board, in `boards` order ("1,2"); empty = board + 1.
    modbus_units: Annotated[list[int], NoDecode] = []
    modbus_pulse_s: float = Field(0.3, gt=0, le=5)  # coil on this long, then off
    modbus_coil_base: int = Field(0, ge=0, le=65535)  # coil address of lock 0
    modbus_input_base: int = Field(0, ge=0, le=65535)  # discrete input of lock 0's latch
    modbus_item_sensors: bool = True  # inputs base+16.. are the item sensors

    @field_validator("modbus_units", mode="before")
    @classmethod
    def _parse_units(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.strip().strip("[]").split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_modbus_units(self) -> "LockerSettings":
        units = self.modbus_units
        if units and (len(units) != len(self.boards) or len(set(units)) != len(units)
                      or any(not 1 <= u <= 247 for u in units)):
            raise ValueError("modbus_units must give one distinct unit id 1-247 per board")
        return self

    def bus_options(self) -> dict[str, Any]:
        """open_lockboard_bus keywords for this bus's protocol."""
        if self.protocol == "modbus":
            return {"protocol": "modbus", "units": self.modbus_units, "pulse_s": self.modbus_pulse_s,
                    "coil_base": self.modbus_coil_base, "input_base": self.modbus_input_base,
                    "item_sensors": self.modbus_item_sensors}
        return {"echo_window_s": self.unlock_echo_window_s}


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    threads: int = Field(8, ge=1)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # The kiosk's API opens doors: it must never be reachable from the network.
        host = "127.0.0.1" if value == "localhost" else value
        try:
            if ipaddress.ip_address(host).is_loopback:
                return host
        except ValueError:
            pass
        raise ValueError("the local UI/API binds a loopback address only (127.0.0.1 or ::1)")


class MqttSettings(_Section):
    host: str | None = None  # None: run offline, keep queueing
    port: int = Field(1883, ge=1, le=65535)
    site_id: str = "dev-site"
    device_id: str = "kiosk-01"
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive_s: int = Field(30, ge=5)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=1)
    window: int = Field(100, ge=1, le=1000)  # outbox messages in flight awaiting PUBACK
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30, gt=0)
    # Trust (ADR 0110, docs/security.md): sealed pickup secrets, broker credentials, TLS.
    platform_public_key: str | None = None  # base64 of the platform's raw X25519 public key
    username: str | None = None
    password_file: Path | None = None  # one line: the broker password (kept out of edge.toml)
    client_cert: Path | None = None  # TLS client certificate (PEM); tls_cert is the older name
    client_key: Path | None = None
    tls: bool = False  # TLS with the system's CAs even when tls_ca is not set
    insecure_plaintext: bool = False  # allow a non-loopback broker without TLS (warned at start)

    @field_validator("platform_public_key")
    @classmethod
    def _x25519_key(cls, value: str | None) -> str | None:
        from edge.identity.sealing import SealError, parse_public_key

        if value is None or not value.strip():
            return None
        try:
            parse_public_key(value)
        except SealError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @model_validator(mode="after")
    def _trusted_broker(self) -> "MqttSettings":
        if self.host is None:
            return self
        if self.platform_public_key is None:
            raise ValueError("mqtt.platform_public_key (EDGE_MQTT__PLATFORM_PUBLIC_KEY) is required "
                             "with a broker: pickup codes travel sealed to the platform")
        if not self.uses_tls and not self.insecure_plaintext and not is_loopback_host(self.host):
            raise ValueError(f"broker {self.host} is not loopback: set mqtt.tls_ca or mqtt.tls "
                             "(or mqtt.insecure_plaintext = true to accept plain text)")
        if (self.client_cert or self.tls_cert) and not (self.client_key or self.tls_key):
            raise ValueError("mqtt.client_cert needs mqtt.client_key")
        return self

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.tls_ca or self.client_cert or self.tls_cert)

    def password(self) -> str | None:
        """The broker password from password_file (first line), or None."""
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise SettingsError(f"bad setting mqtt.password_file: cannot read a password ({exc})") from None


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IdentitySettings(_Section):
    resident_token_public_key: Path | None = None  # the platform's Ed25519 public key (PEM)
    qr_camera: str | None = None  # OpenCV device index or URL
    scanner_url: str | None = None  # serial barcode scanner, any pyserial URL
    scanner_terminator: str = "\r"
    iris_camera: str | None = None
    iris_key_file: Path | None = None  # AES key for iris templates; default under data_dir/keys
    iris_led_left_pin: int | None = None  # BCM PWM pins of the iris camera's NIR LEDs
    iris_led_right_pin: int | None = None  # (both set: live-eye check; else iris opens nothing)

    # One-time codes by SMS (ADR 0115): wrong codes per kiosk and per resident.
    otp_attempt_limit: int = Field(5, ge=1)
    otp_window_s: float = Field(600, gt=0)
    otp_cooldown_s: float = Field(300, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EDGE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("edge")))
    simulate: bool = False
    log_level: str = "INFO"
    site: SiteSettings = SiteSettings()
    locker: LockerSettings = LockerSettings()
    http: HttpSettings = HttpSettings()
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    gpio: GpioSettings = GpioSettings()
    kiosk: KioskSettings = KioskSettings()
    identity: IdentitySettings = IdentitySettings()
    community: CommunitySettings = CommunitySettings()
    backup: BackupSettings = BackupSettings()
    update: UpdateSettings = UpdateSettings()
    journal: JournalSettings = JournalSettings()
    records: RecordsSettings = RecordsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings, or raise SettingsError with one line naming what is wrong."""
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file not found: {config_file}")
    if config_file is None and DEFAULT_CONFIG_FILE.is_file():
        config_file = DEFAULT_CONFIG_FILE
    token = _toml_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except ValueError as exc:  # TOML syntax errors and undecodable environment values
        raise SettingsError(f"cannot read settings: {exc}") from None
    finally:
        _toml_file.reset(token)


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    path = [str(part) for part in first["loc"]]
    env_name = "EDGE_" + "__".join(p.upper() for p in path)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"bad setting {'.'.join(path)} ({env_name}): {first['msg']}{more}"
