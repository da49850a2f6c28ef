"""marshmallow 4 schemas: they validate requests and, through apispec, document the API.

Schemas that depend on the vocabulary (codes are enums) are built by :func:`build_schemas`
once per app, never per request: creating a schema object costs more than loading with it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from referral_api.clinical.model import RuleRegistry
from referral_api.clinical.vocabulary import Vocabulary

from .enums import (
    CHANNELS,
    FEEDBACK_OUTCOMES,
    RATINGS,
    REGIONS,
    SAFETY_STATUSES,
    SEXES,
    URGENCIES,
)


class StrictNumber(fields.Float):
    """A JSON number: refuses strings and booleans that ``fields.Float`` would coerce."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be a number.")
        return super()._deserialize(value, attr, data, **kwargs)


def _code_list(codes: list[str], kind: str, max_items: int) -> fields.List:
    allowed = frozenset(codes)

    def check(value: str) -> None:
        if value not in allowed:
            raise ValidationError(f"Unknown {kind} code '{value[:64]}'.")

    return fields.List(
        fields.String(validate=check, metadata={"enum": codes}),
        load_default=list,
        validate=validate.Length(max=max_items, error=f"At most {max_items} {kind} codes."),
        metadata={"description": f"{kind} codes present (vocabulary), at most {max_items}"},
    )


class PatientSchema(Schema):
    """The patient facts the rules need; ``reference`` is stored only as a keyed hash."""

    class Meta:
        unknown = RAISE

    age = fields.Integer(required=True, strict=True, validate=validate.Range(0, 120),
                         metadata={"description": "years"})
    sex = fields.String(validate=validate.OneOf(SEXES))
    reference = fields.String(validate=validate.Length(1, 128),
                              metadata={"description": "caller's patient id; stored hashed"})


def build_request_schema_class(vocabulary: Vocabulary) -> type[Schema]:
    """The ``POST /v1/decisions`` body schema, with the vocabulary's codes as enums."""
    procedure_codes = list(vocabulary.procedures)
    finding_codes = list(vocabulary.findings)
    contraindication_codes = list(vocabulary.contraindications)

    class DecisionRequestSchema(Schema):
        """Body of ``POST /v1/decisions``."""

        class Meta:
            unknown = RAISE
            ordered = True

        patient = fields.Nested(PatientSchema, required=True)
        region = fields.String(required=True, validate=validate.OneOf(REGIONS))
        requested_procedure = fields.String(
            validate=validate.OneOf(procedure_codes),
            metadata={"description": "default: MRI of the region without contrast"},
        )
        symptom_duration_weeks = StrictNumber(
            required=True, allow_nan=False, validate=validate.Range(0, 5200))
        conservative_care_weeks = StrictNumber(
            load_default=0.0, allow_nan=False, validate=validate.Range(0, 5200))
        intervention_candidate = fields.Boolean(load_default=False, truthy={True},
                                                falsy={False})
        findings = _code_list(finding_codes, "finding", 64)
        contraindications = _code_list(contraindication_codes, "contraindication", 16)
        egfr = StrictNumber(allow_nan=False, validate=validate.Range(0, 200),
                            metadata={"description": "mL/min/1.73 m²"})
        days_since_injury = fields.Integer(
            strict=True, validate=validate.Range(0, 3650),
            metadata={"description": "days since the injury this request is about (0-3650); "
                      "giving it asserts an injury. An injury finding without it is treated "
                      "as at most 7 days old and listed in `assumptions` (rule set 2026.2.0 "
                      "and later; earlier versions ignore it)."})
        ordering_clinician = fields.String(validate=validate.Length(1, 128))

        @validates_schema(skip_on_field_errors=True)
        def _procedure_in_region(self, data: dict[str, Any], **_: Any) -> None:
            code = data.get("requested_procedure")
            if code is not None and vocabulary.procedures[code].region != data["region"]:
                raise ValidationError(
                    f"Procedure '{code}' is not a study of the {data['region']} region.",
                    field_name="requested_procedure",
                )

        @validates_schema(skip_on_field_errors=True)
        def _care_within_symptoms(self, data: dict[str, Any], **_: Any) -> None:
            # Input consistency for every rule set version (delta §6): validation, not a rule.
            care = data.get("conservative_care_weeks", 0)
            if care > data["symptom_duration_weeks"]:
                raise ValidationError(
                    "Must not exceed symptom_duration_weeks: care cannot last longer than "
                    "the symptoms.",
                    field_name="conservative_care_weeks",
                )

    return DecisionRequestSchema


class RequestLoader:
    """Validates a decision request and applies the contract's defaults.

    Built from a registry, it validates against the vocabulary of the rule set version in
    force at the request time (``clock()``, or ``at``), so v2 codes are accepted exactly when
    2026.2.0 evaluates the request. Built from a single vocabulary (older callers, tests) it
    always uses that one. One schema object per vocabulary, built once.
    """

    def __init__(self, source: Vocabulary | RuleRegistry,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._registry = source if isinstance(source, RuleRegistry) else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._schemas: dict[int, tuple[Vocabulary, Schema]] = {}
        fixed = source if isinstance(source, Vocabulary) else source.vocabulary
        self._vocabulary = fixed
        self.schema_class = build_request_schema_class(fixed)
        self.schema = self.schema_class()
        self._schemas[id(fixed)] = (fixed, self.schema)

    def vocabulary(self, at: datetime | None = None) -> Vocabulary:
        """The vocabulary requests are validated against at ``at`` (default: now)."""
        if self._registry is None:
            return self._vocabulary
        try:
            return self._registry.vocabulary_at(at or self._clock())
        except LookupError:
            return self._vocabulary  # no version in force: the decision itself will fail

    def _schema(self, vocabulary: Vocabulary) -> Schema:
        entry = self._schemas.get(id(vocabulary))
        if entry is None:
            entry = (vocabulary, build_request_schema_class(vocabulary)())
            self._schemas[id(vocabulary)] = entry
        return entry[1]

    def load(self, data: Any, at: datetime | None = None) -> dict[str, Any]:
        """Validate ``data``; raises ``ValidationError`` naming each bad field."""
        if not isinstance(data, dict):
            raise ValidationError({"$": ["The body must be a JSON object."]})
        vocabulary = self.vocabulary(at)
        loaded: dict[str, Any] = self._schema(vocabulary).load(data)
        if "requested_procedure" not in loaded:
            loaded["requested_procedure"] = vocabulary.default_procedure(
                loaded["region"]).code
        # Duplicates carry no meaning; keep first occurrence so input order stays readable.
        loaded["findings"] = list(dict.fromkeys(loaded["findings"]))
        loaded["contraindications"] = list(dict.fromkeys(loaded["contraindications"]))
        return loaded


# --- Response schemas: they document the contract (OpenAPI) and are checked by tests. -----


class ProcedureRatingSchema(Schema):
    code = fields.String(required=True)
    cpt = fields.List(fields.String(), required=True)
    rating = fields.String(required=True, validate=validate.OneOf(RATINGS))


class RecommendedProcedureSchema(ProcedureRatingSchema):
    step = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "rule set 2026.2.0 and later: the plan step (1, 2, …); "
                  "items with the same step are alternatives (first preferred), steps are "
                  "done in order. Absent in 2026.1.0 decisions."})


class ScenarioRefSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    sources = fields.List(fields.String(), required=True)


class AlertSchema(Schema):
    code = fields.String(required=True)
    level = fields.String(
        validate=validate.OneOf(("info", "caution", "contraindicated")),
        metadata={"description": "rule set 2026.2.0 and later; `info` alerts do not change "
                  "`safety.status`. Absent in 2026.1.0 decisions."})
    message = fields.String(required=True)


class ComeBackIfSchema(Schema):
    sign = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(("emergency", "today", "week")))
    action = fields.String(required=True)


class PatientInformationSchema(Schema):
    """Plain-language text for the patient (US grade 8 or below) for the governing scenario.

    Placeholders are substituted from configuration: ``{emergency_number}`` from
    ``REFERRAL_API_EMERGENCY_NUMBER`` and ``{fever_threshold}`` from
    ``REFERRAL_API_FEVER_THRESHOLD`` (defaults in the rule set's patient-information file).
    For several emergencies, ``come_back_if`` merges the contributing scenarios' lists.
    """

    locale = fields.String(required=True)
    headline = fields.String(required=True)
    what_is_happening = fields.String(required=True)
    why_this_decision = fields.String(required=True)
    about_the_scan = fields.String(required=True, allow_none=True)
    meanwhile = fields.List(fields.String(), required=True)
    come_back_if = fields.List(fields.Nested(ComeBackIfSchema), required=True)
    questions_to_ask = fields.List(fields.String(), required=True)
    if_scan_booked = fields.String(required=True, allow_none=True)


class SafetySchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(SAFETY_STATUSES))
    alerts = fields.List(fields.Nested(AlertSchema), required=True)


class CounterfactualSchema(Schema):
    finding = fields.String(required=True)
    appropriateness = fields.String(required=True, validate=validate.OneOf(RATINGS))
    urgency = fields.String(required=True, validate=validate.OneOf(URGENCIES))
    scenario = fields.String(required=True)


class AssumptionSchema(Schema):
    field = fields.String(required=True)
    assumed = fields.Raw(required=True)
    message = fields.String(required=True)


class RulesetRefSchema(Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    sha256 = fields.String(required=True)


class DecisionSchema(Schema):
    """The body of ``201`` from ``POST /v1/decisions``."""

    decision_id = fields.UUID(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))
    requested_procedure = fields.Nested(ProcedureRatingSchema, required=True)
    appropriateness = fields.String(required=True, validate=validate.OneOf(RATINGS))
    urgency = fields.String(required=True, validate=validate.OneOf(URGENCIES))
    scenario = fields.Nested(ScenarioRefSchema, required=True)
    also_matched = fields.List(fields.String(), required=True)
    recommended_procedures = fields.List(fields.Nested(RecommendedProcedureSchema),
                                         required=True)
    reasons = fields.List(fields.String(), required=True)
    safety = fields.Nested(SafetySchema, required=True)
    would_change_if = fields.List(fields.Nested(CounterfactualSchema), required=True)
    assumptions = fields.List(fields.Nested(AssumptionSchema), required=True)
    ruleset = fields.Nested(RulesetRefSchema, required=True)
    contributing_scenarios = fields.List(
        fields.String(),
        metadata={"description": "rule set 2026.2.0 and later: the scenarios merged into the "
                  "plan when two or more emergent scenarios matched (else empty). Absent in "
                  "2026.1.0 decisions."})
    patient_information = fields.Nested(
        PatientInformationSchema,
        metadata={"description": "rule set 2026.2.0 and later (absent in 2026.1.0 decisions): "
                  "plain-language text for the patient, for the governing scenario (several "
                  "emergencies: `come_back_if` merged, emergency first). Placeholders are "
                  "filled from configuration: {emergency_number} from "
                  "REFERRAL_API_EMERGENCY_NUMBER, {fever_threshold} from "
                  "REFERRAL_API_FEVER_THRESHOLD (defaults in the rule set's "
                  "patient-information.yaml)."})


class FeedbackSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(FEEDBACK_OUTCOMES))
    outcome_timestamp = fields.String(allow_none=True)
    override_reason = fields.Raw(allow_none=True)
    accepted_suggestions = fields.Raw(allow_none=True)
    received_at = fields.String()
    client = fields.String()


class ChainSchema(Schema):
    seq = fields.Integer(required=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class DecisionRecordSchema(DecisionSchema):
    """A logged decision as auditors read it: the response fields plus provenance."""

    input = fields.Dict(metadata={"description": "the request as validated; patient "
                                                 "reference replaced by its keyed hash"})
    client = fields.String(required=True)
    ordering_clinician = fields.String(allow_none=True)
    engine_version = fields.String(required=True)
    latency_ms = fields.Float(required=True)
    hook_instance = fields.String(allow_none=True)
    feedback = fields.List(fields.Nested(FeedbackSchema), required=True)
    chain = fields.Nested(ChainSchema, required=True)


class RulesetSummarySchema(Schema):
    id = fields.String(required=True)
    version = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("draft", "active", "retired")))
    effective_from = fields.Date(required=True)
    sha256 = fields.String(required=True)
    in_force = fields.Boolean(required=True)


class RulesetListSchema(Schema):
    in_force = fields.String(allow_none=True, required=True,
                             metadata={"description": "the version in force now"})
    rulesets = fields.List(fields.Nested(RulesetSummarySchema), required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(required=True)
    ruleset_in_force = fields.String(allow_none=True)
