"""Iris recognition as a station service: consent, enrolment, revocation, 1:N identification.

Knows nothing of Flask or the locker: the pickup screen asks `identify_from_camera()` whose
eye is in front of the camera and, on a match only, asks the locker for that resident's
parcels. Every attempt is audited with its result and a coarse distance bucket, never a
template; no event goes to the outbox, so nothing iris-related leaves the box (ADR 0044).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from edge.clock import Clock
from edge.drivers.camera import CameraSource
from edge.identity.iris import (
    MIN_ENROL_CAPTURES,
    IrisTemplate,
    Quality,
    enrol_templates,
    extract,
)
from edge.identity.models import IrisConsentRow, IrisTemplateRow
from edge.identity.templates import IrisEnrolments, TemplateCipher
from edge.logs import get_logger
from edge.storage import Actor, Database, audit

log = get_logger(__name__)

Outcome = Literal["match", "near_miss", "no_match", "quality", "nobody_enrolled"]
FRAMES_PER_ATTEMPT = 8  # camera frames tried before giving the person the quality advice
_PENDING_LIMIT = 6  # good captures kept per resident while an enrolment is under way


class IrisError(Exception):
    """An iris request the station refuses; `.code` for the UI, `.message` in plain words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IrisResult:
    outcome: Outcome
    resident_id: str | None = None  # set on a match only
    quality: str | None = None  # the refusing gate's code on outcome "quality"
    distance_bucket: str | None = None

    @property
    def matched(self) -> bool:
        return self.outcome == "match"


@dataclass(frozen=True)
class CaptureProgress:
    quality: Quality
    captured: int
    needed: int = MIN_ENROL_CAPTURES


class SqlTemplateStore:
    """`IrisTemplateStore` on the iris_templates table: ciphertext only."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def save(self, subject_id: str, blob: bytes) -> None:
        with self._db.write() as s:
            self.save_in(s, subject_id, blob)

    def save_in(self, s: Session, subject_id: str, blob: bytes) -> None:
        row = s.get(IrisTemplateRow, subject_id)
        if row is None:
            s.add(IrisTemplateRow(resident_id=subject_id, ciphertext=blob, created_at=self._clock.now()))
        else:
            row.ciphertext, row.created_at = blob, self._clock.now()

    def delete(self, subject_id: str) -> bool:
        with self._db.write() as s:
            return self.delete_in(s, subject_id)

    @staticmethod
    def delete_in(s: Session, subject_id: str) -> bool:
        result = s.execute(delete(IrisTemplateRow).where(IrisTemplateRow.resident_id == subject_id))
        return bool(result.rowcount)

    def load_all(self) -> list[tuple[str, bytes]]:
        with self._db.read() as s:
            return [(row.resident_id, row.ciphertext) for row in s.scalars(select(IrisTemplateRow))]


def distance_bucket(distance: float) -> str:
    """A 0.05-wide band: enough to tune thresholds from the audit, too coarse to say more."""
    low = min(int(distance * 20), 19) / 20
    return f"{low:.2f}-{low + 0.05:.2f}"


class IrisService:
    def __init__(self, db: Database, clock: Clock, cipher: TemplateCipher,
                 camera: CameraSource | None, station: str = "kiosk") -> None:
        self._db = db
        self._clock = clock
        self._store = SqlTemplateStore(db, clock)
        self._cipher = cipher
        self._enrolments = IrisEnrolments(self._store, cipher)
        self._camera = camera
        self._station = station
        self._pending: dict[str, list[IrisTemplate]] = {}  # in memory only, never stored
        self._lock = threading.Lock()

    def start(self) -> None:
        """Decrypt every stored template into the gallery (a template that does not decrypt
        stays stored and is reported, so staff can see a wrong or replaced key file)."""
        broken = self._enrolments.load()
        if broken:
            log.error("iris_templates_do_not_decrypt", count=len(broken))

    def stop(self) -> None:
        with self._lock:
            self._pending.clear()
        if self._camera is not None:
            self._camera.close()

    @property
    def has_camera(self) -> bool:
        return self._camera is not None

    def camera_check(self) -> str | None:
        """For the self-test: one frame's size ("640x480"), or None when no frame came. Only
        the size leaves here; the frame (an eye, perhaps) is dropped at once."""
        if self._camera is None:
            return None
        frame = self._camera.read()
        return None if frame is None else f"{frame.shape[1]}x{frame.shape[0]}"

    def is_enrolled(self, resident_id: str) -> bool:
        return resident_id in self._enrolments.gallery

    # --- enrolment --------------------------------------------------------------------------

    def enrol(self, resident_id: str, frames: Sequence[np.ndarray], *, consent: bool,
              recorded_how: str) -> None:
        """Enrol from a batch of frames (each extracted, then fused)."""
        templates = [e.template for e in map(extract, frames) if e.template is not None]
        self.enrol_from_templates(resident_id, templates, consent=consent, recorded_how=recorded_how)

    def capture_for_enrolment(self, resident_id: str) -> CaptureProgress:
        """One live capture for the enrol screen; good templates wait in memory."""
        quality, template = self._capture()
        with self._lock:
            kept = self._pending.setdefault(resident_id, [])
            if template is not None:
                kept.append(template)
                del kept[:-_PENDING_LIMIT]
            return CaptureProgress(quality, len(kept))

    def finish_enrolment(self, resident_id: str, *, consent: bool, recorded_how: str) -> None:
        self._require_consent(consent, recorded_how)
        with self._lock:
            templates = self._pending.pop(resident_id, [])
        self.enrol_from_templates(resident_id, templates, consent=consent, recorded_how=recorded_how)

    def abandon_enrolment(self, resident_id: str) -> None:
        with self._lock:
            self._pending.pop(resident_id, None)

    def _require_consent(self, consent: bool, recorded_how: str) -> None:
        if consent is not True or not recorded_how.strip():
            raise IrisError("consent_required",
                            "Iris enrolment needs your agreement first.")

    def enrol_from_templates(self, resident_id: str, templates: list[IrisTemplate], *,
                             consent: bool, recorded_how: str) -> None:
        """Fuse captures that agree with each other into one encrypted, consented template."""
        self._require_consent(consent, recorded_how)
        enrolment = enrol_templates(templates)
        if enrolment.template is None:
            with self._db.write() as s:
                audit(s, Actor.RESIDENT, "iris_enrol", f"refused_{enrolment.code}",
                      actor_id=resident_id, target=f"kiosk:{self._station}", clock=self._clock)
            raise IrisError(enrolment.code, enrolment.message)
        blob = self._cipher.encrypt(resident_id, enrolment.template)
        with self._db.write() as s:
            s.add(IrisConsentRow(resident_id=resident_id, consented_at=self._clock.now(),
                                 revoked_at=None, recorded_how=recorded_how[:128]))
            self._store.save_in(s, resident_id, blob)
            audit(s, Actor.RESIDENT, "iris_enrol", "enrolled", actor_id=resident_id,
                  target=f"kiosk:{self._station}", detail={"captures": len(templates)},
                  clock=self._clock)
        self._enrolments.gallery.add(resident_id, enrolment.template)

    # --- revocation -------------------------------------------------------------------------

    def revoke(self, resident_id: str) -> bool:
        """Delete the resident's template now and mark their consent withdrawn. True when
        there was a template."""
        self.abandon_enrolment(resident_id)
        with self._db.write() as s:
            removed = self._store.delete_in(s, resident_id)
            s.execute(update(IrisConsentRow)
                      .where(IrisConsentRow.resident_id == resident_id,
                             IrisConsentRow.revoked_at.is_(None))
                      .values(revoked_at=self._clock.now()))
            audit(s, Actor.RESIDENT, "iris_revoke", "deleted" if removed else "nothing_stored",
                  actor_id=resident_id, target=f"kiosk:{self._station}", clock=self._clock)
        self._enrolments.gallery.remove(resident_id)
        return removed

    def consents_of(self, resident_id: str) -> list[IrisConsentRow]:
        with self._db.read() as s:
            return list(s.scalars(select(IrisConsentRow)
                                  .where(IrisConsentRow.resident_id == resident_id)
                                  .order_by(IrisConsentRow.id)))

    # --- identification ---------------------------------------------------------------------

    def identify_from_camera(self) -> IrisResult:
        """Whose eye is in front of the iris camera: a few frames until one passes the
        quality gates, then a 1:N search."""
        quality, template = self._capture()
        return self._identify(quality, template)

    def identify(self, frame: np.ndarray) -> IrisResult:
        extraction = extract(frame)
        return self._identify(extraction.quality, extraction.template)

    def identify_template(self, probe: IrisTemplate) -> IrisResult:
        return self._identify(Quality("ok"), probe)

    def _identify(self, quality: Quality, probe: IrisTemplate | None) -> IrisResult:
        if probe is None:
            result = IrisResult("quality", quality=quality.code)
        else:
            best = self._enrolments.identify(probe)
            if best is None:
                result = IrisResult("nobody_enrolled")
            else:
                result = IrisResult(best.decision,
                                    best.subject_id if best.decision == "match" else None,
                                    distance_bucket=distance_bucket(best.distance))
        self._audit_attempt(result)
        return result

    def _audit_attempt(self, result: IrisResult) -> None:
        detail = {"result": result.outcome}
        if result.distance_bucket is not None:
            detail["distance"] = result.distance_bucket
        if result.quality is not None:
            detail["quality"] = result.quality
        with self._db.write() as s:
            audit(s, Actor.RESIDENT, "iris_identify", result.outcome, actor_id=result.resident_id,
                  target=f"kiosk:{self._station}", detail=detail, clock=self._clock)

    def _capture(self) -> tuple[Quality, IrisTemplate | None]:
        if self._camera is None:
            raise IrisError("no_camera", "This station has no iris camera.")
        quality = Quality("no_eye")
        for _ in range(FRAMES_PER_ATTEMPT):
            frame = self._camera.read()
            if frame is None:
                continue
            extraction = extract(frame)
            if extraction.template is not None:
                return extraction.quality, extraction.template
            quality = extraction.quality
        return quality, None


