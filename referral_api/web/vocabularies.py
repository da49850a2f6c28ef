"""Which vocabulary and scenario titles a page uses: those of the decision's own rule set
version (a 2026.1.0 decision keeps its labels), or of the version in force for a new form."""

from __future__ import annotations

from referral_api.clinical.vocabulary import Vocabulary

from ..context import services


def vocabulary_for(version: str | None) -> Vocabulary:
    """The vocabulary a rule set version was written against (the shared one when the registry
    keeps a single vocabulary)."""
    svc = services()
    lookup = getattr(svc.registry, "vocabulary_for", None)
    if version and callable(lookup):
        try:
            return lookup(version)
        except (KeyError, LookupError):
            pass
    return svc.vocabulary


def scenario_titles(version: str | None) -> dict[str, str]:
    """Scenario id -> title for a rule set version (ids stay hidden in a details element)."""
    try:
        ruleset = services().registry.get(str(version))
    except KeyError:
        return {}
    return {s.id: s.title for rules in ruleset.regions.values() for s in rules.scenarios}


def form_vocabulary() -> Vocabulary:
    """The vocabulary requests are validated against now (the version in force)."""
    loader = services().request_schema
    current = getattr(loader, "vocabulary", None)
    return current() if callable(current) else services().vocabulary
