"""Iris recognition as a station service: consent, enrolment, revocation, 1:N identification.

Knows nothing of Flask or the locker: the pickup screen asks `identify_from_camera()` whose
eye is in front of the camera and, on a match only, asks the locker for that resident's
parcels. Every attempt is audited with its result and a coarse distance bucket, never a
template; no event goes to the outbox, so nothing iris-related leaves the box (ADR 0044).

While a screen waits for an eye, `guiding()` judges a few frames a second with the same
quality gates as a capture and keeps only the verdict (`Guidance`: the gate's code, whether
the eye has been good long enough, where the iris is as three rounded numbers), so the
screen can say what to fix before the capture (ADR 0144). Both enrolment captures and
pickups run the live-eye check (ADR 0142, 0144).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from edge.assurance import Assurance, AssuranceTooLow, require
from edge.clock import Clock
from edge.drivers.camera import CameraSource, Illuminator
from edge.identity.iris import (
    IrisTemplate,
    Quality,
    extract,
    gray_frame,
)
from edge.identity.iris_enrol import (
    MAX_ENROL_CAPTURES,
    MIN_ENROL_CAPTURES,
    enrol_templates,
)
from edge.identity.liveness import eye_geometry, judge
from edge.identity.models import IrisConsentRow, IrisTemplateRow
from edge.identity.templates import IrisEnrolments, TemplateCipher
from edge.logs import get_logger
from edge.storage import Actor, Database, audit

log = get_logger(__name__)

Outcome = Literal["match", "near_miss", "no_match", "quality", "nobody_enrolled"]
FRAMES_PER_ATTEMPT = 8  # camera frames tried before giving the person the quality advice
LIVENESS_FRAMES = 15  # frames watched after the illuminator switch: a second at 15 fps
_PENDING_LIMIT = MAX_ENROL_CAPTURES  # good captures kept while an enrolment is under way
GUIDE_INTERVAL_S = 0.15  # live guidance judges a frame about 6-7 times a second at most
STEADY_FRAMES = 3  # good frames in a row before the screen may take the capture by itself


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
    liveness: str | None = None  # on quality "not_live": which check refused the eye

    @property
    def matched(self) -> bool:
        return self.outcome == "match"


@dataclass(frozen=True)
class Guidance:
    """What the iris camera sees now, for the screen, judged by the capture's own gates.

    `code`: a quality code ("ok" = good, hold still; "too_far", "blurred", ...), or
    "waiting" (no frame judged yet), "capturing" (a capture has the camera), "no_frame"
    (the camera gave no picture). `steady`: good for STEADY_FRAMES frames in a row.
    `outline`: where the iris is, as (x, y, r) fractions of the frame width/height rounded
    to 0.02, once the gates found one; never a picture."""

    code: str
    steady: bool = False
    outline: tuple[float, float, float] | None = None

    def state(self) -> dict[str, object]:
        state: dict[str, object] = {"guide": self.code, "ready": self.steady}
        if self.outline is not None:
            state["eye_x"], state["eye_y"], state["eye_r"] = self.outline
        return state


def coarse_outline(metrics: dict[str, float], shape: tuple[int, ...]
                   ) -> tuple[float, float, float] | None:
    """The iris circle the gates measured, as fractions of the frame rounded to 0.02: enough
    to draw where the eye sits in the target ring, far too coarse to say anything of it."""
    if not {"iris_x", "iris_y", "iris_r"} <= metrics.keys():
        return None
    height, width = shape[:2]

    def coarse(value: float) -> float:
        return round(round(value * 50) / 50, 2)

    return (coarse(metrics["iris_x"] / width), coarse(metrics["iris_y"] / height),
            coarse(metrics["iris_r"] / width))


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
                 camera: CameraSource | None, station: str = "kiosk",
                 illuminator: Illuminator | None = None) -> None:
        self._db = db
        self._clock = clock
        self._store = SqlTemplateStore(db, clock)
        self._cipher = cipher
        self._enrolments = IrisEnrolments(self._store, cipher)
        self._camera = camera
        self._illuminator = illuminator
        self._station = station
        self._pending: dict[str, list[IrisTemplate]] = {}  # in memory only, never stored
        self._lock = threading.Lock()
        # One reader of the camera at a time: a capture (with its illuminator switch) holds
        # it for all its frames, and live guidance waits meanwhile.
        self._camera_lock = threading.Lock()
        self._guide_lock = threading.Lock()
        self._guidance = Guidance("waiting")
        self._guide_listeners: list[Callable[[], None]] = []
        self._guide_stop: threading.Event | None = None
        self._captures = 0  # captures taken so far: guidance starts its steadiness afresh

    def start(self) -> None:
        """Decrypt every stored template into the gallery (a template that does not decrypt
        stays stored and is reported, so staff can see a wrong or replaced key file)."""
        broken = self._enrolments.load()
        if broken:
            log.error("iris_templates_do_not_decrypt", count=len(broken))
        if self._camera is not None and self._illuminator is None:
            log.warning("iris_without_illuminator: no live-eye check, iris opens no door")
        if self._illuminator is not None:
            self._illuminator.set_pattern("left")

    def stop(self) -> None:
        with self._lock:
            self._pending.clear()
        with self._guide_lock:
            self._guide_listeners.clear()
            if self._guide_stop is not None:
                self._guide_stop.set()
                self._guide_stop = None
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
        with self._camera_lock:
            frame = self._camera.read()
        return None if frame is None else f"{frame.shape[1]}x{frame.shape[0]}"

    def is_enrolled(self, resident_id: str) -> bool:
        return resident_id in self._enrolments.gallery

    # --- enrolment --------------------------------------------------------------------------

    def enrol(self, resident_id: str, frames: Sequence[np.ndarray], *, consent: bool,
              recorded_how: str, assurance: str | Assurance) -> None:
        """Enrol from a batch of frames (each extracted, then fused)."""
        templates = [e.template for e in map(extract, frames) if e.template is not None]
        self.enrol_from_templates(resident_id, templates, consent=consent, recorded_how=recorded_how,
                                  assurance=assurance)

    def start_enrolment(self, resident_id: str, *, assurance: str | Assurance) -> None:
        """The person gave consent on the screen: check who they are (HIGH assurance, ADR
        0115) and that no template is stored (its owner revokes it first), then start from
        fresh captures, none from a past visit."""
        self._require(resident_id, assurance, "iris_consent")
        self._refuse_if_enrolled(resident_id)
        self.abandon_enrolment(resident_id)

    def capture_for_enrolment(self, resident_id: str, *, assurance: str | Assurance) -> CaptureProgress:
        """One live capture for the enrol screen; good templates wait in memory. Three are
        needed; while no three agree, one more is asked for, up to MAX_ENROL_CAPTURES,
        after which finishing reports `inconsistent` and the screen starts over.

        Each capture passes the same live-eye check as a pickup (ADR 0142, 0144): a print
        or a screen raises IrisError "not_live" (a station without an illuminator:
        "liveness_unavailable"), audited, and the captures kept so far are dropped, so the
        enrolment starts over from consent."""
        self._require(resident_id, assurance, "iris_enrol")
        quality, template = self._capture(live=True)
        if quality.code == "not_live":
            self.abandon_enrolment(resident_id)
            detail = {"liveness": quality.detail or "unknown"}
            with self._db.write() as s:
                audit(s, Actor.RESIDENT, "iris_enrol", "refused_not_live", actor_id=resident_id,
                      target=f"kiosk:{self._station}", detail=detail, clock=self._clock)
            if quality.detail == "no_illuminator":
                raise IrisError("liveness_unavailable",
                                "This station cannot check for a live eye, so it cannot enrol one.")
            raise IrisError("not_live", quality.message)
        with self._lock:
            kept = self._pending.setdefault(resident_id, [])
            if template is not None:
                kept.append(template)
                del kept[:-_PENDING_LIMIT]
            return CaptureProgress(quality, len(kept), self._captures_needed(kept))

    @staticmethod
    def _captures_needed(kept: list[IrisTemplate]) -> int:
        if len(kept) < MIN_ENROL_CAPTURES or enrol_templates(kept).ok:
            return MIN_ENROL_CAPTURES
        return min(len(kept) + 1, MAX_ENROL_CAPTURES)

    def finish_enrolment(self, resident_id: str, *, consent: bool, recorded_how: str,
                         assurance: str | Assurance) -> None:
        self._require(resident_id, assurance, "iris_enrol")
        self._require_consent(consent, recorded_how)
        with self._lock:
            templates = self._pending.pop(resident_id, [])
        self.enrol_from_templates(resident_id, templates, consent=consent, recorded_how=recorded_how,
                                  assurance=assurance)

    def abandon_enrolment(self, resident_id: str) -> None:
        with self._lock:
            self._pending.pop(resident_id, None)

    def _require(self, resident_id: str, assurance: str | Assurance, act: str) -> None:
        """ADR 0115: biometrics need HIGH assurance; a refusal is audited with the level."""
        try:
            require(assurance, act)
        except AssuranceTooLow as exc:
            with self._db.write() as s:
                audit(s, Actor.RESIDENT, act, "refused_assurance_too_low", actor_id=resident_id,
                      target=f"kiosk:{self._station}", detail={"assurance": exc.have.value}, clock=self._clock)
            raise

    def _refuse_if_enrolled(self, resident_id: str) -> None:
        with self._db.read() as s:
            stored = s.get(IrisTemplateRow, resident_id) is not None
        if stored or self.is_enrolled(resident_id):
            raise IrisError("already_enrolled", "An iris is already enrolled for you. Delete it first.")

    def _require_consent(self, consent: bool, recorded_how: str) -> None:
        if consent is not True or not recorded_how.strip():
            raise IrisError("consent_required",
                            "Iris enrolment needs your agreement first.")

    def enrol_from_templates(self, resident_id: str, templates: list[IrisTemplate], *,
                             consent: bool, recorded_how: str, assurance: str | Assurance) -> None:
        """Fuse captures that agree with each other into one encrypted, consented template.
        Needs HIGH assurance and no stored template: no silent replacement."""
        self._require(resident_id, assurance, "iris_enrol")
        self._require_consent(consent, recorded_how)
        self._refuse_if_enrolled(resident_id)
        enrolment = enrol_templates(templates)
        if enrolment.template is None:
            with self._db.write() as s:
                audit(s, Actor.RESIDENT, "iris_enrol", f"refused_{enrolment.code}",
                      actor_id=resident_id, target=f"kiosk:{self._station}", clock=self._clock)
            raise IrisError(enrolment.code, enrolment.message)
        blob = self._cipher.encrypt(resident_id, enrolment.template)
        with self._db.write() as s:
            if s.get(IrisTemplateRow, resident_id) is not None:  # enrolled meanwhile, elsewhere
                raise IrisError("already_enrolled", "An iris is already enrolled for you. Delete it first.")
            s.add(IrisConsentRow(resident_id=resident_id, consented_at=self._clock.now(),
                                 revoked_at=None, recorded_how=recorded_how[:128]))
            self._store.save_in(s, resident_id, blob)
            audit(s, Actor.RESIDENT, "iris_enrol", "enrolled", actor_id=resident_id,
                  target=f"kiosk:{self._station}",
                  detail={"captures": len(templates), "assurance": Assurance(assurance).value},
                  clock=self._clock)
        self._enrolments.gallery.add(resident_id, enrolment.template)

    # --- revocation -------------------------------------------------------------------------

    def revoke(self, resident_id: str, *, assurance: str | Assurance) -> bool:
        """The resident, at HIGH assurance, deletes their template now and withdraws their
        consent. True when there was a template."""
        self._require(resident_id, assurance, "iris_revoke")
        return self._revoke(resident_id, Actor.RESIDENT, resident_id,
                            {"assurance": Assurance(assurance).value})

    def revoke_by_platform(self, resident_id: str, operator: str, reason: str) -> bool:
        """The cloud's `iris.revoke` command (the resident asked the platform, or left)."""
        return self._revoke(resident_id, Actor.REMOTE, operator[:64],
                            {"resident_id": resident_id, "reason": reason[:200]})

    def _revoke(self, resident_id: str, actor: Actor, actor_id: str, detail: dict[str, str]) -> bool:
        self.abandon_enrolment(resident_id)
        with self._db.write() as s:
            removed = self._store.delete_in(s, resident_id)
            s.execute(update(IrisConsentRow)
                      .where(IrisConsentRow.resident_id == resident_id,
                             IrisConsentRow.revoked_at.is_(None))
                      .values(revoked_at=self._clock.now()))
            audit(s, actor, "iris_revoke", "deleted" if removed else "nothing_stored",
                  actor_id=actor_id, target=f"kiosk:{self._station}", detail=detail, clock=self._clock)
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
        quality gates, then the live-eye check with the illuminator (a photo or a screen
        is refused as quality "not_live"), then a 1:N search."""
        quality, template = self._capture(live=True)
        return self._identify(quality, template)

    def identify(self, frame: np.ndarray) -> IrisResult:
        extraction = extract(frame)
        return self._identify(extraction.quality, extraction.template)

    def identify_template(self, probe: IrisTemplate) -> IrisResult:
        return self._identify(Quality("ok"), probe)

    def _identify(self, quality: Quality, probe: IrisTemplate | None) -> IrisResult:
        if probe is None:
            result = IrisResult("quality", quality=quality.code, liveness=quality.detail)
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
        if result.liveness is not None:
            detail["liveness"] = result.liveness
        with self._db.write() as s:
            audit(s, Actor.RESIDENT, "iris_identify", result.outcome, actor_id=result.resident_id,
                  target=f"kiosk:{self._station}", detail=detail, clock=self._clock)

    # --- live guidance ----------------------------------------------------------------------

    def guidance(self) -> Guidance:
        return self._guidance

    @contextmanager
    def guiding(self, on_change: Callable[[], None]) -> Iterator[None]:
        """While at least one screen waits for an eye, a thread judges a camera frame about
        every GUIDE_INTERVAL_S with the capture's quality gates and calls each `on_change`
        when the guidance changes. Only the verdict is kept: the frame and any template
        are dropped at once. The last screen to leave stops the thread."""
        if self._camera is None:
            raise IrisError("no_camera", "This station has no iris camera.")
        with self._guide_lock:
            self._guide_listeners.append(on_change)
            if self._guide_stop is None:
                self._guide_stop = threading.Event()
                self._guidance = Guidance("waiting")
                threading.Thread(target=self._guide, args=(self._guide_stop,), daemon=True,
                                 name="iris-guide").start()
        try:
            yield
        finally:
            with self._guide_lock:
                if on_change in self._guide_listeners:
                    self._guide_listeners.remove(on_change)
                if not self._guide_listeners and self._guide_stop is not None:
                    self._guide_stop.set()
                    self._guide_stop = None

    def _guide(self, stop: threading.Event) -> None:
        good, captures = 0, self._captures
        while not stop.is_set():
            started = time.monotonic()
            with self._camera_lock:
                frame = None if stop.is_set() or self._camera is None else self._camera.read()
            if stop.is_set():
                break
            if captures != self._captures:  # a capture came between: steadiness starts over
                good, captures = 0, self._captures
            if frame is None:
                good, guidance = 0, Guidance("no_frame")
            else:
                quality = extract(frame).quality
                good = good + 1 if quality.ok else 0
                guidance = Guidance(quality.code, good >= STEADY_FRAMES,
                                    coarse_outline(quality.metrics, frame.shape))
                del frame
            self._set_guidance(guidance, stop)
            # At most every GUIDE_INTERVAL_S, and resting at least as long as the frame
            # took: on a slow or busy box the guide never takes more than half a core.
            took = time.monotonic() - started
            stop.wait(max(GUIDE_INTERVAL_S - took, took))

    def _set_guidance(self, guidance: Guidance, stop: threading.Event | None = None) -> None:
        with self._guide_lock:
            if stop is not None and (stop is not self._guide_stop or self._camera_lock.locked()):
                # A thread told to stop does not speak after its successor, nor over a
                # capture that took the camera after it read its frame.
                return
            changed, self._guidance = guidance != self._guidance, guidance
            listeners = list(self._guide_listeners)
        if changed:
            for listener in listeners:
                listener()

    # --- capture ------------------------------------------------------------------------------

    def _capture(self, live: bool = False) -> tuple[Quality, IrisTemplate | None]:
        if self._camera is None:
            raise IrisError("no_camera", "This station has no iris camera.")
        with self._camera_lock:
            self._set_guidance(Guidance("capturing"))
            try:
                return self._capture_frames(live)
            finally:
                self._captures += 1
                self._set_guidance(Guidance("waiting"))

    def _capture_frames(self, live: bool) -> tuple[Quality, IrisTemplate | None]:
        assert self._camera is not None
        quality = Quality("no_eye")
        for _ in range(FRAMES_PER_ATTEMPT):
            frame = self._camera.read()
            if frame is None:
                continue
            extraction = extract(frame)
            if extraction.template is None:
                quality = extraction.quality
                continue
            if live:
                refusal = self._live_eye_refusal(gray_frame(frame))
                if refusal is not None:
                    return refusal, None
            return extraction.quality, extraction.template
        return quality, None

    def _live_eye_refusal(self, before: np.ndarray) -> Quality | None:
        """None when the eye in `before` (taken under the "left" pattern) answers the
        switch to "right" as a live eye does; else the "not_live" refusal, with the
        check that failed as its detail (for the audit)."""
        eye = eye_geometry(before)
        if self._illuminator is None or eye is None or self._camera is None:
            cause = "no_illuminator" if self._illuminator is None else "no_geometry"
            return Quality("not_live", detail=cause)
        self._illuminator.set_pattern("right")
        try:
            after = [gray_frame(f) for f in (self._camera.read() for _ in range(LIVENESS_FRAMES))
                     if f is not None]
        finally:
            self._illuminator.set_pattern("left")
        verdict = judge(before, eye, after)
        if verdict.ok:
            return None
        log.info("iris_not_live", check=verdict.cause)
        return Quality("not_live", verdict.metrics, detail=verdict.cause)
