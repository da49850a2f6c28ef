"""The enumerations the API contract fixes (``shared/spec/api-v1.md``), defined once.

Validation (schemas), storage, the audit filters, CDS Hooks and the rule files all use these
tuples, so a value accepted in one place is accepted everywhere. No imports: every layer,
the pure engine included, may use it.
"""

REGIONS = ("cervical", "thoracic", "lumbar")
SEXES = ("female", "male", "other", "unknown")
RATINGS = ("usually_appropriate", "may_be_appropriate", "usually_not_appropriate", "not_covered")
#: Each rating in words, as reasons, cards and pages say it (lower case, mid-sentence).
RATING_WORDS = {
    "usually_appropriate": "usually appropriate",
    "may_be_appropriate": "may be appropriate",
    "usually_not_appropriate": "usually not appropriate",
    "not_covered": "not covered",
}
URGENCIES = ("emergent", "urgent", "routine", "none")
SAFETY_STATUSES = ("clear", "caution", "contraindicated")
CHANNELS = ("api", "cds-hooks", "form")
FEEDBACK_OUTCOMES = ("accepted", "overridden")
#: The ``feedback=`` filter: a decision's latest outcome, or ``none`` without feedback.
FEEDBACK_FILTERS = (*FEEDBACK_OUTCOMES, "none")
#: Roles of an API key (api-v1.md, Credentials); ``admin`` holds every other role too.
EVALUATOR = "evaluator"
CLINICIAN = "clinician"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = (EVALUATOR, CLINICIAN, AUDITOR, ADMIN)
