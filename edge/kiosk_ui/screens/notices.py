"""Notices and policy guides, in large readable type, with the office to contact."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from edge.kiosk_ui.screens.common import N_, service

bp = Blueprint("notices", __name__, url_prefix="/notices")
KINDS = (("notice", N_("Notices")), ("policy", N_("Policy guides")))


@bp.get("/")
def list_notices() -> Any:
    kind = request.args.get("kind", "notice")
    if kind not in dict(KINDS):
        abort(404)
    return render_template("notices.html", kinds=KINDS, kind=kind,
                           notices=service("catalogue").notices(kind=kind))


@bp.get("/<notice_id>")
def show_notice(notice_id: str) -> Any:
    from edge.community import CatalogueError

    try:
        notice = service("catalogue").notice(notice_id)
    except CatalogueError:
        abort(404)
    return render_template("notice.html", notice=notice)
