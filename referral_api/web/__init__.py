"""Server-rendered HTML pages: the clinician form (``/``) and the audit dashboard (``/audit``).

No JavaScript: plain forms, a signed session cookie opened with an access key, a CSRF token on
every POST, and inline SVG charts rendered on the server. The app registers :data:`bp`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

_PACKAGE = Path(__file__).resolve().parent.parent

bp = Blueprint(
    "web",
    __name__,
    template_folder=str(_PACKAGE / "templates"),
    static_folder=str(_PACKAGE / "static"),
    # Not /static: the app's own static route would shadow the blueprint's.
    static_url_path="/assets",
)

# The view modules attach their routes to ``bp`` when imported.
from . import audit, clinician, pages  # noqa: E402, F401
