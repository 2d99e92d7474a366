"""The service catalogue: public services, venue booking, personalised services, policy help."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from edge.kiosk_ui.screens.common import N_, service

bp = Blueprint("services", __name__, url_prefix="/services")
CATEGORIES = (("public", N_("Public services")), ("venue", N_("Venue booking")),
              ("personal", N_("Personalised services")), ("policy", N_("Policy consultation")))


@bp.get("/")
def list_services() -> Any:
    category = request.args.get("category", CATEGORIES[0][0])
    if category not in dict(CATEGORIES):
        abort(404)
    return render_template("services.html", categories=CATEGORIES, category=category,
                           services=service("catalogue").services(category=category))
