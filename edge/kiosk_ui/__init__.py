"""The local web app: kiosk screens and the JSON API, thin adapters over domain services."""
from edge.kiosk_ui.app import create_app

__all__ = ["create_app"]
