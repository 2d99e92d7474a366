"""Iris: pickup by looking into the camera, and a resident's own enrolment and deletion.

Thin adapter over IrisService (edge/identity/service.py): a match opens that resident's
parcels through the locker; a near miss or no match asks for the pickup code instead.
While the pickup and capture screens are open they follow the "iris" live topic: the
words of GUIDE_WORDS for the gate that refuses the eye now, a ring that turns green, and
the capture taken by itself once the eye has been good for a moment (ADR 0144).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    assurance_required,
    controller,
    current_lang,
    error_message,
    resident,
    service,
    visit_assurance,
)

bp = Blueprint("iris", __name__, url_prefix="/iris")

# The quality gates' codes (edge/identity/iris.py QUALITY_MESSAGES) in plain words.
QUALITY_WORDS = {
    "no_eye": N_("We cannot see an eye. Look straight into the camera."),
    "off_centre": N_("Move so that your eye is in the middle of the camera picture."),
    "too_far": N_("Come a little closer to the camera."),
    "too_close": N_("Move back a little from the camera."),
    "blurred": N_("The picture is blurred. Hold still for a moment."),
    "covered": N_("Your eye is too covered. Open your eyes wide and look at the camera."),
    "too_bright": N_("Too much light on your eye. Step out of direct sunlight or shade the camera."),
    "glasses": N_("Reflections hide your eye. Please take off your glasses."),
    "not_live": N_("We could not confirm a live eye. Look into the camera yourself, without a photo or a screen."),
    "ok": N_("Eye captured."),
}
# Live guidance (IrisService.guiding), short enough to read from a step back. Each quality
# code is the gate that refused the latest frame; "ok" is shown only when every gate passed.
GUIDE_WORDS = {
    "waiting": N_("Look into the camera above the screen"),
    "no_eye": N_("Look straight into the camera"),
    "off_centre": N_("Move your eye to the middle"),
    "too_far": N_("Move closer"),
    "too_close": N_("Move back a little"),
    "blurred": N_("Hold still"),
    "covered": N_("Open your eyes wide"),
    "glasses": N_("Please take off your glasses"),
    "too_bright": N_("Too bright: shade the camera from the sun"),
    "ok": N_("Good, hold still"),
    "capturing": N_("Taking the picture, hold still"),
    "no_frame": N_("The camera is not answering"),
}
# Simulate mode: what the simulated iris camera can be told to show (Simulation.show_iris_scene).
SIM_SCENES = {
    "live": N_("The eye, looking in"),
    "too_far": N_("Too far away"),
    "blurred": N_("Moving (blurred)"),
    "closed": N_("Eyes half closed"),
    "glasses": N_("Wearing glasses"),
    "too_bright": N_("In bright sunlight"),
    "paper": N_("A printed photo of the eye (attack)"),
    "photo": N_("A glossy photo print of the eye (attack)"),
    "screen": N_("A phone screen showing the eye (attack)"),
    "nothing": N_("Nobody"),
}
ENROL_WORDS = {
    "too_few_captures": N_("We need a few more clear pictures of your eye. Please try again."),
    "inconsistent": N_("The pictures did not agree with each other yet. Please look into the camera again for a few more pictures."),
    "consent_required": N_("Iris enrolment needs your agreement first."),
    "already_enrolled": N_("An eye is already enrolled for you. Delete it first, then enrol again."),
    "not_live": N_("We could not confirm a live eye, so nothing was enrolled. Only your own eye, looking into the camera, can be enrolled; a photo or a screen cannot."),
    "liveness_unavailable": N_("This station cannot check for a live eye, so it cannot enrol one. Please use your pickup code."),
}
STRANGER = "stranger"  # simulate mode: someone nobody enrolled stands at the camera


@bp.app_context_processor
def _iris_context() -> dict[str, Any]:
    iris = controller().services.iris
    return {"iris_camera": bool(iris is not None and iris.has_camera),
            "iris_guide_words": GUIDE_WORDS, "iris_sim_scenes": SIM_SCENES,
            "sim_iris": _simulated_iris_camera()}


@bp.get("/pickup")
def pickup() -> Any:
    _iris_with_camera()
    return render_template("iris_pickup.html", demo_people=_demo_people(), stranger=STRANGER)


@bp.post("/simulate")
def simulate() -> Any:
    """Simulate mode: the page's "what the camera sees" control, applied at once so the
    live guidance follows it. 404 on a real station. On the capture screen the person is
    always the signed-in resident."""
    simulation = controller().simulation
    if simulation is None or simulation.iris_camera is None:
        abort(404)
    person = _simulated_person(request.form.get("sim_person"))
    if not person or not simulation.show_iris_scene(person, request.form.get("sim_scene", "live")):
        return jsonify(error="unknown person or scene"), 400
    return jsonify(ok=True)


@bp.post("/pickup")
def pickup_look() -> Any:
    from edge.locker.errors import CoolingDown

    iris = _iris_with_camera()
    locker, kiosk_id = service("locker"), controller().settings.mqtt.device_id
    try:
        locker.refuse_if_cooling_down(kiosk_id)
    except CoolingDown as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("pickup.enter_code"))
    _simulate_eye(request.form.get("sim_person"), request.form.get("sim_scene"))
    result = iris.identify_from_camera()
    if result.outcome == "quality" and result.quality == "not_live":
        # A photo or a screen at the camera: it spends the kiosk's attempt budget too.
        refusal = locker.record_failed_identification(kiosk_id, "iris")
        flash(error_message(refusal) if isinstance(refusal, CoolingDown)
              else _(QUALITY_WORDS["not_live"]), "error")
        return redirect(url_for("pickup.enter_code"))
    if result.outcome == "quality":
        flash(_(QUALITY_WORDS[result.quality]), "error")
        return redirect(url_for("iris.pickup"))
    if result.matched:
        return _open_parcels_of(result.resident_id)
    if result.outcome in ("near_miss", "no_match"):
        refusal = locker.record_failed_identification(kiosk_id, "iris")
        if isinstance(refusal, CoolingDown):
            flash(error_message(refusal), "error")
            return redirect(url_for("pickup.enter_code"))
    if result.outcome == "near_miss":
        flash(_("We are not sure it is you. Please type your pickup code instead."), "error")
    else:
        flash(_("We did not recognise you. Please type your pickup code."), "error")
    return redirect(url_for("pickup.enter_code"))


def _open_parcels_of(resident_id: str) -> Any:
    from edge.locker.errors import LockerError

    try:
        views = service("locker").pickups_for_resident(resident_id)
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("pickup.enter_code"))
    if not views:
        flash(_("There is no parcel for you in the locker right now."), "error")
        return redirect(url_for("pickup.enter_code"))
    session["pickups"] = [*session.get("pickups", []), *(v.parcel_id for v in views)]
    if len(views) == 1:
        return redirect(url_for("pickup.door", parcel_id=views[0].parcel_id))
    return render_template("iris_doors.html", views=views)


@bp.get("/enrol")
@assurance_required("iris_consent")
def enrol() -> Any:
    iris = _iris_with_camera()
    resident_id = resident()["resident_id"]
    return render_template("iris_enrol.html", enrolled=iris.is_enrolled(resident_id),
                           consented=session.get("iris_consent") == resident_id)


@bp.post("/consent")
@assurance_required("iris_consent")
def consent() -> Any:
    """The explicit "I agree" button: remembered for this visit, recorded at enrolment.
    A resident with an eye enrolled deletes it first: no silent replacement (ADR 0115)."""
    from edge.identity.service import IrisError

    iris = _iris_with_camera()
    try:
        iris.start_enrolment(resident()["resident_id"], assurance=visit_assurance())
    except IrisError as exc:
        flash(_(ENROL_WORDS.get(exc.code, ENROL_WORDS["consent_required"])), "error")
        return redirect(url_for("iris.enrol"))
    session["iris_consent"] = resident()["resident_id"]
    return redirect(url_for("iris.capture"))


@bp.route("/capture", methods=["GET", "POST"])
@assurance_required("iris_enrol")
def capture() -> Any:
    from edge.identity.service import IrisError

    iris = _iris_with_camera()
    resident_id = resident()["resident_id"]
    if session.get("iris_consent") != resident_id:
        return redirect(url_for("iris.enrol"))
    if request.method == "GET":
        return render_template("iris_capture.html", captured=0, needed=3)
    _simulate_eye(resident_id, request.form.get("sim_scene"))
    try:
        progress = iris.capture_for_enrolment(resident_id, assurance=visit_assurance())
    except IrisError as exc:  # not a live eye: the captures so far are gone, start over
        session.pop("iris_consent", None)
        flash(_(ENROL_WORDS.get(exc.code, ENROL_WORDS["not_live"])), "error")
        return redirect(url_for("iris.enrol"))
    if progress.captured < progress.needed:
        if not progress.quality.ok:
            flash(_(QUALITY_WORDS[progress.quality.code]), "error")
        return render_template("iris_capture.html", captured=progress.captured, needed=progress.needed)
    return _finish(iris, resident_id)


def _finish(iris: Any, resident_id: str) -> Any:
    from edge.identity.service import IrisError

    how = f"kiosk:{controller().settings.mqtt.device_id}:button:I agree:{current_lang()}"
    try:
        iris.finish_enrolment(resident_id, consent=True, recorded_how=how, assurance=visit_assurance())
    except IrisError as exc:
        flash(_(ENROL_WORDS.get(exc.code, ENROL_WORDS["too_few_captures"])), "error")
        return redirect(url_for("iris.capture"))
    session.pop("iris_consent", None)
    flash(_("Your eye is enrolled. Next time, look into the camera to collect parcels."), "success")
    return redirect(url_for("iris.enrol"))


@bp.post("/revoke")
@assurance_required("iris_revoke")
def revoke() -> Any:
    iris = service("iris")
    iris.revoke(resident()["resident_id"], assurance=visit_assurance())
    session.pop("iris_consent", None)
    flash(_("Your iris data is deleted."), "success")
    return redirect(url_for("iris.enrol"))


def _iris_with_camera() -> Any:
    iris = service("iris")
    if not iris.has_camera:
        abort(503)
    return iris


def _simulated_iris_camera() -> bool:
    simulation = controller().simulation
    return simulation is not None and simulation.iris_camera is not None


def _demo_people() -> list[tuple[str, str]]:
    """Simulate mode: whose eye the simulated camera can show (the synced residents)."""
    simulation = controller().simulation
    if simulation is None or simulation.iris_camera is None:
        return []
    from edge.community.models import ResidentRow

    with controller().db.read() as s:
        rows = s.query(ResidentRow).order_by(ResidentRow.resident_id).all()
        return [(row.resident_id, row.name_masked) for row in rows]


def _simulated_person(chosen: str | None) -> str | None:
    """Simulate mode: whose eye the control shows; on the capture screen, the resident's."""
    if request.form.get("sim_for") == "capture":
        return resident()["resident_id"] if resident() else None
    return chosen


def _simulate_eye(resident_id: str | None, scene: str | None = None) -> None:
    """Simulate mode: put the chosen resident's synthetic eye (or a stranger's), as the
    page's scene control says, in front of the simulated camera when the form is sent.
    Tests that drive the simulated camera themselves send no person."""
    simulation = controller().simulation
    if simulation is not None and resident_id:
        simulation.show_iris_scene(resident_id, scene or "live")
