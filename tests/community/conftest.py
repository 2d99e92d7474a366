"""Community services on a real SQLite database (migrated), with a fake clock.

The fake clock starts at 2026-11-21 08:00 UTC: 16:00 on Saturday in Asia/Shanghai.
"""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import FakeClock
from edge.community import (
    ActivityService,
    BookingService,
    CatalogueService,
    FeedbackService,
    RequestService,
    ResidentDirectory,
)
from edge.handoffs import resident_token_check
from edge.identity.tokens import ResidentTokenIssuer, ResidentTokenVerifier
from edge.storage import Database
from tests.support.community import SHANGHAI, SITE_ID, payload


@pytest.fixture
def catalogue(db: Database, clock: FakeClock) -> CatalogueService:
    service = CatalogueService(db, clock, SHANGHAI)
    service.replace(payload())
    return service


@pytest.fixture
def bookings(db: Database, catalogue: CatalogueService, clock: FakeClock) -> BookingService:
    return BookingService(db, catalogue, clock)


@pytest.fixture
def activities(db: Database, catalogue: CatalogueService, clock: FakeClock) -> ActivityService:
    return ActivityService(db, catalogue, clock)


@pytest.fixture
def requests_service(db: Database, clock: FakeClock) -> RequestService:
    return RequestService(db, clock, emergency_callback_minutes=10)


@pytest.fixture
def feedback(db: Database, catalogue: CatalogueService, clock: FakeClock) -> FeedbackService:
    return FeedbackService(db, catalogue, clock)


@pytest.fixture
def issuer() -> ResidentTokenIssuer:
    return ResidentTokenIssuer(Ed25519PrivateKey.generate())


@pytest.fixture
def residents(db: Database, catalogue: CatalogueService, clock: FakeClock,
              issuer: ResidentTokenIssuer) -> ResidentDirectory:
    return ResidentDirectory(db, clock, SITE_ID, resident_token_check(ResidentTokenVerifier(issuer.public_key_pem())))
