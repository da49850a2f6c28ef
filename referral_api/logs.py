"""Structured logs: one JSON object per line (python-json-logger), and security events.

Every line carries ``time`` (UTC, ms), ``level``, ``logger`` and ``message``; inside a request
also ``request_id``, ``route`` (the URL rule's template, never the path or query string, which
could carry a patient reference) and ``key_id`` of the authenticated credential (never the
key). Security events add ``event`` and their own fields (``reason``, ``client`` …).

``REFERRAL_API_LOG_FORMAT=text`` gives a human line instead, for development;
``REFERRAL_API_LOG_LEVEL`` sets the level. gunicorn's access and error logs use the same
formats through :mod:`referral_api.access_log`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = ["SECURITY_LOGGER", "configure_logging", "formatter", "security_event", "utc_time"]

APP_LOGGER = "referral_api"
SECURITY_LOGGER = "referral_api.security"

#: LogRecord attributes that are not fields of the line (everything else given in ``extra`` is).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def utc_time(seconds: float) -> str:
    """``2026-12-01T23:05:09.123Z`` for a ``time.time()`` value."""
    global _second
    whole = int(seconds)
    cached = _second  # one tuple, replaced whole: threads never see half an update
    if cached[0] != whole:  # formatting the date costs more than the rest of a line
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int((seconds - whole) * 1000):03d}Z"


def _request_context() -> dict[str, Any]:
    """request id, route template and key id of the current request (empty outside one)."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {}
    rule = request.url_rule
    principal = g.get("principal")
    return {
        "request_id": g.get("request_id"),
        "route": rule.rule if rule is not None else None,
        "key_id": getattr(principal, "key_id", None),
    }


class RequestContextFilter(logging.Filter):
    """Adds the request context to records made while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach ``request_id``, ``route`` and ``key_id`` unless the record already has them."""
        for name, value in _request_context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonLineFormatter(JsonFormatter):
    """python-json-logger with this service's field names and UTC millisecond times."""

    def __init__(self) -> None:
        super().__init__("{levelname}{name}{message}", style="{",
                         rename_fields={"levelname": "level", "name": "logger"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        """Put ``time`` first and lower-case the level."""
        log_data["time"] = utc_time(record.created)
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()


class TextLineFormatter(logging.Formatter):
    """``time level logger [request] message key=value …`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """One line, then the traceback (if any) on the following lines."""
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items()
                          if k not in _STANDARD and k != "request_id" and v is not None)
        rid = getattr(record, "request_id", None)
        line = (f"{utc_time(record.created)} {record.levelname.lower():<7} {record.name}"
                f"{f' [{rid}]' if rid else ''} {record.getMessage()}"
                f"{' ' + extras if extras else ''}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``REFERRAL_API_LOG_FORMAT`` (``json`` or ``text``)."""
    return TextLineFormatter() if log_format == "text" else JsonLineFormatter()


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (gunicorn and pytest replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(log_format: str, level: str) -> logging.Handler:
    """Send the app's loggers (``referral_api.*``) to stderr in ``log_format`` at ``level``.

    Idempotent: a second call (another app in the same process) replaces the handler.
    Records still propagate, so a handler on the root logger (pytest's caplog) sees them.
    """
    logger = logging.getLogger(APP_LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestContextFilter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    return handler


_security = logging.getLogger(SECURITY_LOGGER)


def security_event(event: str, message: str, **fields: Any) -> None:
    """Log a security event (warning level) with its fields; never pass a secret or a patient
    reference: fields are written as given."""
    _security.warning(message, extra={"event": event, **fields})
