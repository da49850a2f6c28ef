"""gunicorn's logger class for this service: an access line that formats only what it writes.

gunicorn's own ``access()`` builds a dictionary of every request header, response header and
environ entry (``atoms``) for a line that uses four of them: 120-145 µs a request under load.
:class:`AccessLogger` reads the handful of values it writes straight from the response and
the WSGI environ (``scripts/bench_access_log.py`` measures both). The line is one JSON object
(``REFERRAL_API_LOG_FORMAT=json``, the default) or a short human line (``text``):

``time``, ``level``, ``logger``, ``request_id``, ``method``, ``route`` (the URL rule's
template, put in the environ by :mod:`referral_api.observe`; never the path or the query
string, which can carry a patient reference), ``status``, ``latency_ms``, ``bytes``,
``key_id`` (of the credential, never the key) and ``client``.

gunicorn's error log gets the app's formatter (:func:`referral_api.logs.formatter`) too, so
every line the server writes has one format. Set in ``gunicorn.conf.py`` (``logger_class``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from gunicorn import glogging

from referral_api.logs import formatter, utc_time

__all__ = ["AccessLogger", "access_fields"]

# The environ keys the app fills in after each request (referral_api/observe.py); kept as
# literals here so that gunicorn's master does not import the Flask side to log a line.
ENVIRON_ROUTE = "referral_api.route"
ENVIRON_KEY_ID = "referral_api.key_id"
ENVIRON_CLIENT = "referral_api.client"
ENVIRON_REQUEST_ID = "referral_api.request_id"


def access_fields(resp: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
    """The fields of one access line (only these are read from the request)."""
    status = resp.status
    if isinstance(status, str):
        status = int(status[:3])
    return {
        "time": utc_time(time.time()),
        "level": "info",
        "logger": "gunicorn.access",
        "request_id": environ.get(ENVIRON_REQUEST_ID),
        "method": environ.get("REQUEST_METHOD"),
        "route": environ.get(ENVIRON_ROUTE),
        "status": status,
        "latency_ms": round(request_time.total_seconds() * 1000, 3),
        "bytes": getattr(resp, "sent", None),
        "key_id": environ.get(ENVIRON_KEY_ID),
        "client": environ.get(ENVIRON_CLIENT) or environ.get("REMOTE_ADDR"),
    }


def _text_line(f: dict[str, Any]) -> str:
    return (f"{f['time']} info    access {f['client']} \"{f['method']} {f['route'] or '-'}\" "
            f"{f['status']} {f['bytes']} {f['latency_ms']}ms rid={f['request_id'] or '-'}"
            f" key={f['key_id'] or '-'}")


class AccessLogger(glogging.Logger):
    """gunicorn ``Logger`` with this service's access line and log format."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's set-up, then this service's formatter on its error log handlers."""
        super().setup(cfg)
        self.log_format = os.environ.get("REFERRAL_API_LOG_FORMAT", "json").strip().lower()
        for handler in self.error_log.handlers:
            if getattr(handler, "_gunicorn", False):
                handler.setFormatter(formatter(self.log_format))

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Write one access line (nothing when access logging is off)."""
        if not self.access_log_enabled:
            return
        try:
            fields = access_fields(resp, environ, request_time)
            line = (_text_line(fields) if self.log_format == "text"
                    else orjson.dumps(fields).decode())
            self.access_log.info(line)
        except Exception:
            self.exception("could not write an access log line")
