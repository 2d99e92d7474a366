"""Commands to stations, durable on the platform side: `queue_command` writes one in the
caller's transaction; `CommandSender` publishes what is unsent (QoS 1) and marks each row on
its PUBACK, so a decision taken while the broker is away still reaches the station."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog

from fleet import db as fleet_db
from fleet.mqtt import command, connect_properties, new_client
from fleet.settings import FleetSettings

log = structlog.get_logger("fleet.commands")

COMMAND_LIFETIME = timedelta(days=2)  # expires_at: a station offline longer refuses it


def queue_command(conn: psycopg.Connection, name: str, data: dict[str, Any], *, site_id: str,
                  device_id: str, transaction_id: str, now: datetime) -> None:
    topic, payload = command(name, data, site_id=site_id, device_id=device_id,
                             transaction_id=transaction_id, now=now, expires_in=COMMAND_LIFETIME)
    conn.execute("INSERT INTO outgoing_commands (topic, payload, transaction_id, created_at) "
                 "VALUES (%s, %s::jsonb, %s, %s)", (topic, payload.decode(), transaction_id, now))


class CommandSender:
    """A thread: publish unsent commands, mark them sent when the broker acknowledges."""

    def __init__(self, settings: FleetSettings, *, now: Callable[[], datetime],
                 client_id: str | None = None) -> None:
        self._settings = settings
        self._now = now
        self._client_id = client_id or f"{settings.mqtt.client_id_prefix}-console"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> "CommandSender":
        mqtt_settings = self._settings.mqtt
        self._client = new_client(mqtt_settings, self._client_id)
        self._client.on_connect = lambda *_a: (self.connected.set(), self._wake.set())
        self._client.on_disconnect = lambda *_a: self.connected.clear()
        self._client.connect_async(mqtt_settings.host, mqtt_settings.port, mqtt_settings.keepalive_s,
                                   clean_start=False, properties=connect_properties(mqtt_settings.session_expiry_s))
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="fleet-command-sender", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(10)
        self._client.disconnect()
        self._client.loop_stop()

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if not self.connected.is_set():
                continue
            try:
                conn = conn if conn is not None and not conn.closed else fleet_db.connect(self._settings.database_url)
                self._send_pending(conn)
            except psycopg.Error as exc:
                log.warning("command_sender_db_failed", error=str(exc))
                conn = None
        if conn is not None:
            conn.close()

    def _send_pending(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            rows = conn.execute("SELECT id, topic, payload FROM outgoing_commands WHERE sent_at IS NULL "
                                "ORDER BY id LIMIT 200").fetchall()
        for row_id, topic, payload in rows:
            info = self._client.publish(topic, json.dumps(payload, ensure_ascii=False), qos=1)
            info.wait_for_publish(10)
            if not info.is_published():
                return  # try again on the next round; the row stays unsent
            with conn.transaction():
                conn.execute("UPDATE outgoing_commands SET sent_at = %s WHERE id = %s", (self._now(), row_id))
