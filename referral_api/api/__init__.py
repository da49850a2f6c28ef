"""The JSON API v1, health endpoints and the OpenAPI document (one blueprint)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

# Route modules register their views on ``bp`` when imported.
from . import audit, decisions, health, metrics, rulesets  # noqa: E402, F401
