"""Notices and policy guides, in large readable type, with the office to contact."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from edge.kiosk_ui.screens.common import N_, service

bp = Blueprint("notices", __name__, url_prefix="/notices")
KINDS = (("notice", N_("Notices")), ("policy", N_("Policy guides")),
         ("party", N_("Party affairs")), ("affairs", N_("Residents' affairs")),
         ("about", N_("About the community")), ("guide", N_("How-to guides")),
         ("found", N_("Lost and found")))


@bp.get("/")
def list_notices() -> Any:
    kind = request.args.get("kind", "notice")
    if kind not in dict(KINDS):
        abort(404)
    catalogue = service("catalogue")
    return render_template("notices.html", kinds=KINDS, kind=kind,
                           notices=catalogue.notices(kind=kind),
                           station_info=catalogue.station() if kind == "about" else None)


@bp.get("/<notice_id>")
def show_notice(notice_id: str) -> Any:
    from edge.community import CatalogueError

    try:
        notice = service("catalogue").notice(notice_id)
    except CatalogueError:
        abort(404)
    return render_template("notice.html", notice=notice)
