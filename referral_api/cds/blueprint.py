"""CDS Hooks 2.0 endpoints: discovery, the two spine-MRI services, feedback, CORS.

``GET /cds-services`` and CORS preflights are public. Service calls and feedback need an API
key with ``evaluator`` or a client JWT from an issuer registered in
``REFERRAL_API_CDS_CLIENTS``. Every spine-imaging draft order becomes one logged decision
(:meth:`DecisionService.decide`, channel ``cds-hooks``) and one card; every imaging order
gets an Argonaut PAMA rating as a ServiceRequest ``update`` system action.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError

from referral_api.enums import EVALUATOR
from referral_api.store.interface import NewFeedback

from ..auth import (
    Principal,
    authenticate_api_key,
    authorize,
    bearer_token,
    refuse,
)
from ..clinical.vocabulary import Vocabulary
from ..context import services
from ..decide import NoRulesetInForce
from ..jsonbody import json_response, read_json
from ..problem import ProblemError
from . import cards
from .client_jwt import CdsClientRegistry, ClientAuthError, looks_like_jwt
from .fhir import CodeMatcher, DraftOrder, Prefetch, derive_request, draft_orders
from .hook_request import HookRequestError, parse_feedback, parse_hook_call

bp = Blueprint("cds", __name__)

EXTENSION = "referral_api.cds"
CHANNEL = "cds-hooks"
ROLE = EVALUATOR  # CDS Hooks clients act as evaluators

PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "egfr": (
        "Observation?patient={{context.patientId}}&code=http://loinc.org|33914-3,"
        "http://loinc.org|62238-1,http://loinc.org|98979-8,http://loinc.org|77147-7,"
        "http://loinc.org|76633-7&_sort=-date&_count=1"
    ),
}
USAGE = (
    "Send the prefetch (patient, conditions, egfr): what is missing is assumed and listed in "
    "the card (age: adult under 50; duration: under 4 weeks). Red flags the record does not "
    "show are listed as not assessed, and a rating that rests on them says so and links to "
    "the form to confirm them. Implants and devices are never ruled out: screen before "
    "scanning. Authenticate with a client JWT from a registered issuer (ES384 or RS384) or an "
    "API key with the evaluator role."
)


@dataclass(frozen=True)
class ServiceDefinition:
    """One CDS service of the discovery document."""

    id: str
    hook: str
    title: str
    description: str

    def discovery(self) -> dict[str, Any]:
        """Its discovery entry."""
        return {"hook": self.hook, "id": self.id, "title": self.title,
                "description": self.description, "prefetch": dict(PREFETCH),
                "usageRequirements": USAGE}


SERVICES = {
    s.id: s for s in (
        ServiceDefinition(
            "spine-mri-appropriateness", "order-select",
            "Spine MRI appropriateness (order select)",
            "Rates a selected spine imaging order (MRI, CT, myelography, radiographs of the "
            "cervical, thoracic or lumbar spine) against the ACR-based spine-imaging rule set: "
            "appropriateness, urgency, recommended study and MRI safety alerts, with the "
            "Argonaut PAMA rating of every imaging order."),
        ServiceDefinition(
            "spine-mri-appropriateness-sign", "order-sign",
            "Spine MRI appropriateness (order sign)",
            "The same appropriateness check when spine imaging orders are signed, with the "
            "Argonaut PAMA rating (appropriate, not-appropriate, no-criteria-apply) as a "
            "ServiceRequest update."),
    )
}

CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-ID"
CORS_METHODS = "GET, POST, OPTIONS"
CORS_MAX_AGE = "600"


@dataclass
class CdsState:
    """Per-app state built once at registration: trusted clients and code matchers."""

    clients: CdsClientRegistry | None
    #: one matcher per vocabulary (each rule set version may have its own), built on first use
    matchers: dict[int, CodeMatcher]

    def matcher(self, vocabulary: Vocabulary) -> CodeMatcher:
        """The code matcher of ``vocabulary`` (vocabularies live as long as the app)."""
        found = self.matchers.get(id(vocabulary))
        if found is None or found.vocabulary is not vocabulary:
            found = self.matchers[id(vocabulary)] = CodeMatcher(vocabulary)
        return found


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    app = state.app
    svc = app.extensions["referral_api"]
    path = svc.settings.cds_clients
    # A broken clients file stops start-up: better than silently refusing every EHR.
    clients = CdsClientRegistry.from_file(path) if path else None
    app.extensions[EXTENSION] = CdsState(
        clients=clients, matchers={id(svc.vocabulary): CodeMatcher(svc.vocabulary)})


def _state() -> CdsState:
    return current_app.extensions[EXTENSION]



def _base_url() -> str:
    """REFERRAL_API_PUBLIC_URL, else the URL the request reached us at."""
    return services().settings.public_url or request.host_url.rstrip("/")


# --- CORS --------------------------------------------------------------------------------------


def _allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    allowed = services().settings.cors_origins
    if not origin or not allowed:
        return None
    return origin if (origin in allowed or "*" in allowed) else None


@bp.before_request
def _preflight() -> Response | None:
    """Answer CORS preflights before authentication (they are public)."""
    if request.method != "OPTIONS":
        return None
    return Response(status=204, headers={"Allow": CORS_METHODS})


@bp.after_request
def _cors(response: Response) -> Response:
    response.headers.add("Vary", "Origin")
    origin = _allowed_origin()
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, WWW-Authenticate"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    # Cards carry patient-derived text: never kept by shared caches.
    if request.method == "POST":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- authentication ----------------------------------------------------------------------------


def _audience() -> str:
    public = services().settings.public_url
    return f"{public}{request.path}" if public else request.base_url


def authenticate() -> Principal:
    """An evaluator API key or a registered client's JWT; 401 (or 403) otherwise.

    Only a refused credential is counted towards the throttle (429), never a valid one.
    """
    token = bearer_token() or ""
    if token and looks_like_jwt(token):
        clients = _state().clients
        if clients is None:
            raise refuse("jwt_refused", "jwt",
                         "Client JWTs are not accepted: no CDS client is registered.",
                         detail="no CDS client is registered")
        try:
            verified = clients.verify(token, audience=_audience(),
                                      seen_jti=services().log.seen_jti)
        except ClientAuthError as exc:
            raise refuse("jwt_refused", "jwt", f"The client token was refused: {exc}.",
                         detail=str(exc)) from None
        principal = Principal(kind="jwt", label=verified.issuer, roles=frozenset({ROLE}))
        g.principal = principal
        return principal
    return authorize(authenticate_api_key(), (ROLE,))


def _service(service_id: str) -> ServiceDefinition:
    service = SERVICES.get(service_id)
    if service is None:
        raise ProblemError(404, "No CDS service has this id; see GET /cds-services.")
    return service


# --- endpoints ---------------------------------------------------------------------------------


@bp.get("/cds-services")
def discovery() -> Response:
    """The CDS Hooks discovery document (public)."""
    return json_response({"services": [s.discovery() for s in SERVICES.values()]})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Evaluate the draft orders of an order-select or order-sign call."""
    started = time.perf_counter()
    service = _service(service_id)
    principal = authenticate()
    body = read_json(request)
    try:
        call = parse_hook_call(body, service.hook)
    except HookRequestError as exc:
        raise ProblemError(400, exc.reason, errors=exc.errors) from None
    svc = services()
    settings = svc.settings
    base_url = _base_url()
    prefetch = Prefetch.from_request(call.prefetch)
    # One instant for the whole call: the version in force, its vocabulary (which orders are
    # spine studies, how codes map) and "today" for ages and windows all agree.
    now = _now()
    vocabulary = _vocabulary_at(now)
    selections = call.selections if call.hook == "order-select" else ()
    card_list: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for order in draft_orders(call.context, vocabulary, selections):
        if order.kind in ("other", "silent"):
            # silent: cds_hooks_trigger false (delta §8.5): no card and no system action.
            continue
        if order.kind == "imaging":
            # Outside the spine: no criteria of ours apply. The consult id is fresh and, as
            # no decision is made, nothing is logged.
            actions.append(cards.pama_action(
                order.resource, rating="no-criteria-apply", consult_id=str(uuid.uuid4()),
                auc_url=None, gcode=settings.pama_gcode))
            continue
        record = _decision(order, call, prefetch, principal, now, vocabulary, started)
        # A repeated hookInstance returns the logged record: its card uses that record's
        # own version's vocabulary, so the card is the same as the first time.
        card_list.append(cards.build_card(record, order.resource,
                                          _vocabulary_of(record, vocabulary),
                                          base_url=base_url))
        actions.append(cards.pama_action(
            order.resource, rating=cards.pama_rating(record["appropriateness"]),
            consult_id=record["decision_id"],
            auc_url=cards.ruleset_url(base_url, record["ruleset"]["version"]),
            gcode=settings.pama_gcode))
    return json_response(cards.response_body(card_list, actions))


def _now() -> datetime:
    """The evaluation instant of a hook call: the decision clock (pinnable in tests)."""
    return services().settings.clock()


def _vocabulary_at(now: datetime) -> Vocabulary:
    """The vocabulary of the rule set version in force at ``now`` (503 when none is)."""
    try:
        return services().registry.vocabulary_at(now)
    except LookupError as exc:
        raise NoRulesetInForce(str(exc)) from None


def _vocabulary_of(record: dict[str, Any], default: Vocabulary) -> Vocabulary:
    try:
        return services().registry.vocabulary_for(record["ruleset"]["version"])
    except KeyError:
        return default


def _decision(order: DraftOrder, call: Any, prefetch: Prefetch, principal: Principal,
              now: datetime, vocabulary: Vocabulary, started: float) -> dict[str, Any]:
    """The logged decision for one spine order: the earlier one for a repeated hookInstance."""
    svc = services()
    existing = svc.log.find_by_order(call.hook_instance, order.order_ref)
    if existing is not None:
        return existing
    derived = derive_request(order, prefetch, vocabulary, patient_reference=call.patient_id,
                             today=now.date(), matcher=_state().matcher(vocabulary))
    try:
        validated = svc.request_schema.load(derived.request, at=now)
    except ValidationError as err:  # derivation keeps to the schema; this guards regressions
        raise ProblemError(400, "The facts derived from this request are not valid: "
                                f"{', '.join(sorted(err.normalized_messages()))}.") from None
    record, _created = svc.decisions.decide(
        validated,
        channel=CHANNEL,
        client=principal.label,
        ordering_clinician=call.user_id,
        assumptions=derived.assumptions,
        hook_instance=call.hook_instance,
        order_ref=order.order_ref,
        at=now,
        started=started,
    )
    return record


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Append CDS Hooks feedback (accepted / overridden) to the decisions behind the cards."""
    _service(service_id)
    principal = authenticate()
    body = read_json(request)
    try:
        items = parse_feedback(body)
    except HookRequestError as exc:
        raise ProblemError(400, exc.reason, errors=exc.errors) from None
    log = services().log
    for card_id, _ in items:
        record = log.get(card_id)
        if record is None or record.get("channel") != CHANNEL:
            raise ProblemError(404, "No card with this uuid was issued by this service.")
    stored = []
    for card_id, entry in items:
        try:
            item = log.append_feedback(card_id, NewFeedback(
                outcome=entry["outcome"],
                override_reason=entry.get("overrideReason"),
                accepted_suggestions=entry.get("acceptedSuggestions"),
                outcome_timestamp=entry.get("outcomeTimestamp"),
            ), principal.label)
        except KeyError:
            raise ProblemError(404, "No card with this uuid was issued by this service."
                               ) from None
        stored.append({"card": card_id, "outcome": item["outcome"],
                       "received_at": item["received_at"]})
    return json_response({"feedback": stored})

