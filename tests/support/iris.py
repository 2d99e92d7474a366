"""Iris steps the identity suites share: a resident's synthetic eye from the camera simulator,
enrolment with consent at high assurance, and the stored template rows as raw bytes."""
from __future__ import annotations

import sqlite3

import numpy as np

from edge.identity.service import IrisService
from simulators.camera import SimulatedCamera
from simulators.people import synthetic_person
from tests.support.station import Station


def iris(station: Station) -> IrisService:
    return station.controller.services.iris


def eye_frames(resident_id: str, count: int = 4) -> list[np.ndarray]:
    camera = SimulatedCamera(fps=None, seed=7)
    camera.show_eye(synthetic_person(resident_id))
    return [camera.read() for _ in range(count)]


def enrol(station: Station, resident_id: str) -> None:
    iris(station).enrol(resident_id, eye_frames(resident_id), consent=True,
                        recorded_how="test:button:I agree", assurance="high")


def template_rows(station: Station) -> dict[str, bytes]:
    with sqlite3.connect(station.controller.settings.database_path) as raw:
        return dict(raw.execute("SELECT resident_id, ciphertext FROM iris_templates"))
