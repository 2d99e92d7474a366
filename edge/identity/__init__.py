"""Who is at the kiosk: signed QR tokens and iris recognition. See docs/identity.md.

Pure functions and small classes; nothing here knows Flask, MQTT, serial or the database.
"""
from edge.identity.iris import (
    MATCH_THRESHOLD,
    NEAR_MISS_THRESHOLD,
    Decision,
    Extraction,
    IrisTemplate,
    Quality,
    QualityLimits,
    decide,
    extract,
    hamming_distance,
    iris_quality_report,
)
from edge.identity.iris_enrol import Enrolment, enrol, enrol_templates
from edge.identity.keys import KeyFileError, load_or_create_key
from edge.identity.templates import (
    GalleryMatch,
    IrisEnrolments,
    IrisGallery,
    IrisTemplateStore,
    MemoryTemplateStore,
    TemplateCipher,
    TemplateCipherError,
)
from edge.identity.tokens import (
    PickupClaim,
    PickupTokenCodec,
    ResidentClaim,
    ResidentTokenIssuer,
    ResidentTokenVerifier,
    TokenError,
    token_kind,
)

__all__ = [
    "MATCH_THRESHOLD", "NEAR_MISS_THRESHOLD", "Decision", "Enrolment", "Extraction",
    "IrisTemplate", "Quality", "QualityLimits", "decide", "enrol", "enrol_templates", "extract",
    "hamming_distance", "iris_quality_report",
    "KeyFileError", "load_or_create_key",
    "GalleryMatch", "IrisEnrolments", "IrisGallery", "IrisTemplateStore",
    "MemoryTemplateStore", "TemplateCipher", "TemplateCipherError",
    "PickupClaim", "PickupTokenCodec", "ResidentClaim", "ResidentTokenIssuer",
    "ResidentTokenVerifier", "TokenError", "token_kind",
]
