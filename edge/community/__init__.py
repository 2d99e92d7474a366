"""Community services of the station: catalogue, residents, bookings, activities, requests,
feedback. Domain only: no Flask, no MQTT; the kiosk UI and the cloud bridge call these."""
from edge.community.activities import ActivityService, Attendance
from edge.community.bookings import Booking, BookingService, Slot
from edge.community.catalogue import CatalogueService
from edge.community.errors import (
    ActivityError,
    BookingError,
    CatalogueError,
    CommunityError,
    FeedbackError,
    IdentityError,
    RequestError,
)
from edge.community.feedback import Feedback, FeedbackService
from edge.community.i18n import text
from edge.community.requests import FollowUp, RequestService, ServiceRequest
from edge.community.residents import Resident, ResidentDirectory, phone_hash

__all__ = [
    "ActivityError", "ActivityService", "Attendance", "Booking", "BookingError",
    "BookingService", "CatalogueError", "CatalogueService", "CommunityError", "Feedback",
    "FeedbackError", "FeedbackService", "FollowUp", "IdentityError", "RequestError", "RequestService",
    "Resident", "ResidentDirectory", "ServiceRequest", "Slot", "phone_hash", "text",
]
