"""The staff console: three-level accounts, bookings to approve, help requests to follow up."""
