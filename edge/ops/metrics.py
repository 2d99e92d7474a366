"""Prometheus metrics of a station (ADR 0152).

Two kinds, so that domain code stays free of metrics calls:
- counters of things that happened, counted at generic choke points once their transaction
  commits: every outbox event (`record_event`, which also carries every command reply) and
  every audit row (door openings, code/QR/iris attempts), plus bus errors seen by the
  composition root's bus wrapper and kiosk request latency seen by a Flask hook;
- gauges read when Prometheus scrapes (`StationCollector`): outbox depth and age, MQTT link,
  compartments by state, doors left open, disk, CPU temperature, under-voltage.

Served on the local Flask server at /metrics (127.0.0.1 only) and by `edge diag metrics`.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from edge.logs import get_logger

log = get_logger("edge.metrics")

EVENTS = CollectorRegistry(auto_describe=True)  # process-wide counters, one per station process
EVENTS_RECORDED = Counter("edge_events_recorded", "Events committed to the outbox, by type",
                          ["type"], registry=EVENTS)
COMMANDS = Counter("edge_commands", "Cloud commands answered, by command and result",
                   ["command", "result"], registry=EVENTS)
AUDITED = Counter("edge_audit", "Audited actions, by action and result", ["action", "result"],
                  registry=EVENTS)
DOOR_OPENINGS = Counter("edge_door_openings", "Door openings commanded, by result and actor",
                        ["result", "actor"], registry=EVENTS)
CODE_ATTEMPTS = Counter("edge_pickup_code_attempts", "Pickup code attempts, by result",
                        ["result"], registry=EVENTS)
QR_ATTEMPTS = Counter("edge_qr_attempts", "Pickup QR token attempts, by result", ["result"],
                      registry=EVENTS)
IRIS_ATTEMPTS = Counter("edge_iris_attempts", "Iris identifications, by result", ["result"],
                        registry=EVENTS)
BUS_ERRORS = Counter("edge_bus_errors", "Lock-board bus failures, by board and kind (timeout, error)",
                     ["board", "kind"], registry=EVENTS)
KIOSK_LATENCY = Histogram("edge_kiosk_request_seconds", "Local UI/API request latency, by route",
                          ["route", "method"], registry=EVENTS,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

_ATTEMPTS_BY_ACTION = {"pickup_code": CODE_ATTEMPTS, "pickup_token": QR_ATTEMPTS,
                       "iris_identify": IRIS_ATTEMPTS}
_LABEL_TEXT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PENDING_KEY = "metrics_pending"


# --- counting at the choke points, after commit ------------------------------------------

def count_event_after_commit(session: Session, type_: str, data: dict[str, Any]) -> None:
    """Called by outbox.record_event: count the event (and a command reply by command and
    result) once the caller's transaction commits; nothing when it rolls back. Counts are
    summed per transaction and added once, at commit: this is the outbox's hot path."""
    pending = _pending(session)
    key = (EVENTS_RECORDED, (type_,))
    pending[key] = pending.get(key, 0) + 1
    if type_ == "command.reply":  # cloud_bridge.commands.REPLY_TYPE
        error = data.get("error") or {}
        result = "ok" if data.get("ok") else str(error.get("code", "error"))
        key = (COMMANDS, (str(data.get("command")), result))
        pending[key] = pending.get(key, 0) + 1


def count_audit_after_commit(session: Session, actor: str, action: str, result: str) -> None:
    """Called by audit.audit: the audit row's action and result, once committed."""
    pending = _pending(session)
    for key in _audit_keys(actor, action, result):
        pending[key] = pending.get(key, 0) + 1


def count_audit(actor: str, action: str, result: str) -> None:
    """Called by audit.audit_now once its transaction has committed (no session there)."""
    for counter, labels in _audit_keys(actor, action, result):
        counter.labels(*(_label(label) for label in labels)).inc()


def _audit_keys(actor: str, action: str, result: str) -> list[tuple[Any, tuple[str, ...]]]:
    keys: list[tuple[Any, tuple[str, ...]]] = [(AUDITED, (action, result))]
    if action == "door_open":
        keys.append((DOOR_OPENINGS, (result, actor)))
    attempts = _ATTEMPTS_BY_ACTION.get(action)
    if attempts is not None:
        keys.append((attempts, (result,)))
    return keys


def _pending(session: Session) -> dict[tuple[Any, tuple[str, ...]], int]:
    """This transaction's counts, added to the counters after its commit."""
    pending = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = session.info[_PENDING_KEY] = {}

        def flush(done: Session) -> None:
            for (counter, labels), amount in done.info.pop(_PENDING_KEY, {}).items():
                counter.labels(*(_label(label) for label in labels)).inc(amount)

        def forget(done: Session, *_args: Any) -> None:
            # Any rollback, a savepoint's included, forgets the counts so far: a metric may
            # miss an event in a rare partial rollback, but never counts one that was undone.
            done.info.pop(_PENDING_KEY, None)

        sa_event.listen(session, "after_commit", flush, once=True)
        sa_event.listen(session, "after_soft_rollback", forget, once=True)
    return pending


def _label(value: Any) -> str:
    """Label values come from code, but command names come from the cloud: bound them."""
    text = str(value)
    return text if _LABEL_TEXT.match(text) else "other"


# --- the lock-board bus, seen from outside ---------------------------------------------

class CountingBus:
    """The lock-board bus with its failures counted per board: a status read or unlock that
    got no reply is a timeout, any other failure an error. Delegates everything else."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    def read_board(self, board: int) -> Any:
        try:
            status = self._bus.read_board(board)
        except Exception as exc:
            _count_bus_failure(board, str(exc))
            raise
        if status.error:
            _count_bus_failure(board, status.error)
        return status

    def unlock(self, board: int, lock: int) -> Any:
        try:
            result = self._bus.unlock(board, lock)
        except Exception as exc:
            _count_bus_failure(board, str(exc))
            raise
        if result.error and not result.opened and "unreachable" in result.error:
            _count_bus_failure(board, result.error)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


def _count_bus_failure(board: int, error: str) -> None:
    kind = "timeout" if "no reply" in error else "error"
    BUS_ERRORS.labels(str(board), kind).inc()


# --- the kiosk's latency ----------------------------------------------------------------

def observe_requests(app: Any) -> None:
    """Time every request of the Flask app by its route rule (not its URL: ids stay out)."""
    from flask import g, request

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.teardown_request
    def _observe(_exc: BaseException | None) -> None:
        started = g.pop("metrics_started", None)
        if started is None:
            return
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        KIOSK_LATENCY.labels(rule, request.method).observe(time.perf_counter() - started)


# --- state read at scrape time ----------------------------------------------------------

class StationCollector(Collector):
    """Gauges read from the controller when scraped. Each reading that fails or does not
    exist on this board (no thermal zone, no vcgencmd) is left out, never an error."""

    def __init__(self, controller: Any, *, thermal_root: Path = Path("/sys/class/thermal"),
                 vcgencmd: str | None = None) -> None:
        self.controller = controller
        self.thermal_root = thermal_root
        self.vcgencmd = vcgencmd or shutil.which("vcgencmd")

    def collect(self) -> Iterator[Metric]:
        for read in (self._outbox, self._mqtt, self._compartments, self._disk, self._temperature,
                     self._throttling):
            try:
                yield from read()
            except Exception as exc:  # noqa: BLE001 - one broken reading must not hide the rest
                log.warning("metric_read_failed", reading=read.__name__.strip("_"), error=str(exc))

    def _outbox(self) -> Iterator[Metric]:
        from sqlalchemy import text

        with self.controller.db.read() as session:
            rows, size = session.execute(text(
                "SELECT pending_rows, pending_bytes FROM outbox_stats WHERE id = 1")).one()
            oldest = session.execute(text(
                "SELECT ts FROM outbox WHERE seq = (SELECT min(seq) FROM outbox WHERE published_at IS NULL)"
            )).scalar()
        yield _gauge("edge_outbox_pending_events", "Events waiting for the cloud's PUBACK", rows)
        yield _gauge("edge_outbox_pending_bytes", "Bytes of events waiting for the cloud", size)
        age = 0.0
        if oldest is not None:
            from datetime import datetime, timezone

            stamp = datetime.fromisoformat(str(oldest)).replace(tzinfo=timezone.utc)
            age = max(0.0, (self.controller.clock.now() - stamp).total_seconds())
        yield _gauge("edge_outbox_oldest_age_seconds", "Age of the oldest event waiting (0: none)", age)

    def _mqtt(self) -> Iterator[Metric]:
        bridge = self.controller.services.bridge
        if bridge is None:
            return
        yield _gauge("edge_mqtt_connected", "1 while an MQTT session with the cloud is up",
                     1 if bridge.connected.is_set() else 0)
        last = getattr(bridge, "last_puback_at", None)
        if last is not None:
            yield _gauge("edge_mqtt_seconds_since_last_puback", "Seconds since the broker last "
                         "acknowledged an event", max(0.0, time.time() - last))

    def _compartments(self) -> Iterator[Metric]:
        locker = self.controller.services.locker
        if locker is None:
            return
        by_state = GaugeMetricFamily("edge_compartments", "Compartments by state", labels=["state"])
        counts: dict[str, int] = {}
        for compartment in locker.snapshot():
            counts[compartment["state"]] = counts.get(compartment["state"], 0) + 1
        for state in ("free", "occupied", "deposit", "pickup", "return", "fault", "disabled", "unknown"):
            by_state.add_metric([state], counts.pop(state, 0))
        for state, count in counts.items():
            by_state.add_metric([state], count)
        yield by_state
        yield _gauge("edge_doors_left_open", "Doors open longer than locker.door_left_open_s",
                     self._doors_left_open())

    def _doors_left_open(self) -> int:
        from sqlalchemy import func, select

        from edge.locker.models import Compartment

        with self.controller.db.read() as session:
            return session.scalar(select(func.count()).select_from(Compartment).where(
                Compartment.left_open_alerted.is_(True), Compartment.latch == "open")) or 0

    def _disk(self) -> Iterator[Metric]:
        usage = shutil.disk_usage(self.controller.settings.data_dir)
        yield _gauge("edge_disk_free_bytes", "Free bytes on the data folder's file system", usage.free)
        yield _gauge("edge_disk_total_bytes", "Size of the data folder's file system", usage.total)

    def _temperature(self) -> Iterator[Metric]:
        zones = sorted(self.thermal_root.glob("thermal_zone*/temp")) if self.thermal_root.is_dir() else []
        readings = []
        for zone in zones:
            try:
                readings.append((zone.parent.name, int(zone.read_text().strip()) / 1000.0))
            except (OSError, ValueError):
                continue
        if readings:
            family = GaugeMetricFamily("edge_cpu_temperature_celsius", "SoC temperature by thermal zone",
                                       labels=["zone"])
            for name, celsius in readings:
                family.add_metric([name], celsius)
            yield family

    def _throttling(self) -> Iterator[Metric]:
        """Raspberry Pi firmware flags (vcgencmd get_throttled): bit 0 under-voltage now,
        bit 16 under-voltage since boot, bit 2/18 throttled now/since boot."""
        if not self.vcgencmd:
            return
        reply = subprocess.run([self.vcgencmd, "get_throttled"], capture_output=True, text=True,
                               timeout=2, check=False)
        match = re.search(r"throttled=(0x[0-9a-fA-F]+)", reply.stdout)
        if reply.returncode != 0 or match is None:
            return
        flags = int(match.group(1), 16)
        yield _gauge("edge_undervoltage", "1 while the supply is under-voltage", flags & 0x1)
        yield _gauge("edge_undervoltage_since_boot", "1 if under-voltage happened since boot",
                     (flags >> 16) & 0x1)
        yield _gauge("edge_throttled", "1 while the SoC is throttled", (flags >> 2) & 0x1)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _ProcessCounters(Collector):
    """The process-wide event counters, inside a station's own registry."""

    def collect(self) -> Iterator[Metric]:
        yield from EVENTS.collect()


_registries: dict[int, CollectorRegistry] = {}
_registries_lock = threading.Lock()


def station_registry(controller: Any) -> CollectorRegistry:
    """The registry a station's /metrics serves: its scrape-time gauges and the counters."""
    with _registries_lock:
        registry = _registries.get(id(controller))
        if registry is None or getattr(registry, "_controller", None) is not controller:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(StationCollector(controller))
            registry.register(_ProcessCounters())
            registry._controller = controller  # type: ignore[attr-defined]
            _registries[id(controller)] = registry
        return registry


def render(controller: Any) -> bytes:
    return generate_latest(station_registry(controller))


def health_summary(controller: Any) -> dict[str, Any]:
    """A few figures for the retained MQTT status (stations sit behind NAT: the cloud
    cannot scrape them): what a person would look at first."""
    summary: dict[str, Any] = {}
    for metric in StationCollector(controller).collect():
        for sample in metric.samples:
            if sample.name == "edge_outbox_pending_events":
                summary["outbox_pending"] = int(sample.value)
            elif sample.name == "edge_outbox_oldest_age_seconds":
                summary["outbox_oldest_s"] = round(sample.value)
            elif sample.name == "edge_compartments" and sample.labels["state"] in ("fault", "unknown"):
                summary[f"doors_{sample.labels['state']}"] = int(sample.value)
            elif sample.name == "edge_doors_left_open":
                summary["doors_left_open"] = int(sample.value)
            elif sample.name == "edge_disk_free_bytes":
                summary["disk_free_mb"] = int(sample.value // 1_000_000)
            elif sample.name == "edge_cpu_temperature_celsius":
                summary["cpu_temp_c"] = max(summary.get("cpu_temp_c", 0), round(sample.value, 1))
            elif sample.name == "edge_undervoltage":
                summary["undervoltage"] = bool(sample.value)
    return summary
