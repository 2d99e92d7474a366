"""Simulate mode only: a demo catalogue and a demo platform key pair, so every community
screen can be tried on a laptop. Never used when `simulate` is off."""
from __future__ import annotations

import json
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import iso_utc
from edge.community.residents import phone_hash
from edge.identity.tokens import ResidentTokenIssuer
from edge.privacy import mask_phone

DEMO_CATALOGUE = Path(__file__).with_name("demo_catalogue.json")
DEMO_PRIVATE_KEY = "resident_token_demo_private.pem"
DEMO_PUBLIC_KEY = "resident_token_demo_public.pem"


def demo_catalogue(now: datetime, tz: ZoneInfo, site_id: str) -> dict[str, Any]:
    """The demo file as a catalogue.sync payload, its times made concrete around `now`:
    activities say `starts_in_minutes` (from now) or `day_offset` + `start` (site time),
    notices say `published_days_ago`, residents carry a demo `phone` turned into a hash."""
    raw = json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    now = now.replace(second=0, microsecond=0)
    today = now.astimezone(tz).date()
    raw["version"] = f"demo-{iso_utc(now)}"
    raw["activities"] = [_activity(a, now, today, tz) for a in raw["activities"]]
    raw["notices"] = [_notice(n, now) for n in raw["notices"]]
    raw["residents"] = [_resident(r, site_id) for r in raw["residents"]]
    return raw


def _activity(item: dict[str, Any], now: datetime, today: date, tz: ZoneInfo) -> dict[str, Any]:
    item = dict(item)
    if "starts_in_minutes" in item:
        starts = now + timedelta(minutes=item.pop("starts_in_minutes"))
    else:
        day = today + timedelta(days=item.pop("day_offset"))
        starts = datetime.combine(day, time.fromisoformat(item.pop("start")), tz)
    item["starts_at"] = iso_utc(starts)
    item["ends_at"] = iso_utc(starts + timedelta(minutes=item.pop("duration_minutes")))
    return item


def _notice(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    item = dict(item)
    item["published_at"] = iso_utc(now - timedelta(days=item.pop("published_days_ago")))
    return item


def _resident(item: dict[str, Any], site_id: str) -> dict[str, Any]:
    item = dict(item)
    phone = item.pop("phone")
    return {**item, "phone_masked": mask_phone(phone), "phone_hash": phone_hash(site_id, phone)}


def ensure_demo_token_keys(keys_dir: Path) -> Path:
    """The demo platform's public key file, creating the pair on first use. The private key
    stays beside it so simulators can mint residents' QR codes (`demo_token_issuer`)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    private_path = keys_dir / DEMO_PRIVATE_KEY
    public_path = keys_dir / DEMO_PUBLIC_KEY
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        key = Ed25519PrivateKey.generate()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        public_path.write_bytes(ResidentTokenIssuer(key).public_key_pem())
    if not public_path.exists():  # the private key was written but the process stopped
        public_path.write_bytes(demo_token_issuer(keys_dir).public_key_pem())
    return public_path


def demo_token_issuer(keys_dir: Path) -> ResidentTokenIssuer:
    """Mints resident QR tokens the simulate-mode box accepts (demo and simulators only)."""
    key = serialization.load_pem_private_key((keys_dir / DEMO_PRIVATE_KEY).read_bytes(), None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the demo resident token key is not an Ed25519 key")
    return ResidentTokenIssuer(key)
