"""Cost of one gunicorn access-log line: gunicorn's default logger against AccessLogger.

Both write to a handler that discards the text (the cost measured is building and formatting
the line, not the terminal). The request is a realistic decision call: 14 request headers,
9 response headers and a WSGI environ of ~40 entries, as gunicorn's sync worker builds it.

    .venv/bin/python scripts/bench_access_log.py [--lines N]

Prints µs per line for each (best of 5 runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import sys
import timeit
from types import SimpleNamespace

from gunicorn import glogging
from gunicorn.config import Config

from referral_api.access_log import AccessLogger

# The format gunicorn.conf.py used before AccessLogger (four atoms and a response header).
OLD_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'

REQUEST_HEADERS = [
    ("HOST", "referral.example.org"), ("USER-AGENT", "ehr-plugin/4.2 (python-requests)"),
    ("ACCEPT", "application/json"), ("ACCEPT-ENCODING", "gzip, deflate"),
    ("CONNECTION", "keep-alive"), ("CONTENT-TYPE", "application/json"),
    ("CONTENT-LENGTH", "331"), ("AUTHORIZATION", "Bearer rk_0123456789ab_" + "A" * 43),
    ("X-REQUEST-ID", "bench-0001"), ("X-FORWARDED-FOR", "10.1.2.3"),
    ("X-FORWARDED-PROTO", "https"), ("IDEMPOTENCY-KEY", "c0ffee-0001"),
    ("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("ACCEPT-LANGUAGE", "en-GB"),
]
RESPONSE_HEADERS = [
    ("Content-Type", "application/json"), ("Content-Length", "2012"),
    ("X-Request-ID", "bench-0001"), ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'"), ("Cross-Origin-Opener-Policy",
                                                        "same-origin"),
    ("Cache-Control", "no-store"),
]


def environ() -> dict:
    """A WSGI environ like gunicorn's sync worker makes for the request above."""
    env = {
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.file_wrapper": object, "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "gunicorn/27.0.1", "REQUEST_METHOD": "POST", "QUERY_STRING": "",
        "RAW_URI": "/v1/decisions", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "51234", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "PATH_INFO": "/v1/decisions", "SCRIPT_NAME": "", "gunicorn.socket": object(),
        "referral_api.route": "/v1/decisions", "referral_api.key_id": "0123456789ab",
        "referral_api.client": "10.1.2.3", "referral_api.request_id": "bench-0001",
    }
    for name, value in REQUEST_HEADERS:
        env["HTTP_" + name.replace("-", "_")] = value
    return env


class _Discard(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def logger(cls: type, access_format: str | None) -> glogging.Logger:
    cfg = Config()
    cfg.set("accesslog", "-")
    if access_format:
        cfg.set("access_log_format", access_format)
    instance = cls(cfg)
    for handler in list(instance.access_log.handlers):
        instance.access_log.removeHandler(handler)
    discard = _Discard()
    discard.setFormatter(logging.Formatter("%(message)s"))
    instance.access_log.addHandler(discard)
    return instance


def per_line_us(instance: glogging.Logger, lines: int) -> float:
    resp = SimpleNamespace(status="201 Created", sent=2012, headers=RESPONSE_HEADERS)
    req = SimpleNamespace(headers=REQUEST_HEADERS)
    env = environ()
    took = dt.timedelta(microseconds=3_456)
    timer = timeit.Timer(lambda: instance.access(resp, req, env, took))
    return min(timer.repeat(repeat=5, number=lines)) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    print(f"gunicorn Logger (atoms, old format): "
          f"{per_line_us(logger(glogging.Logger, OLD_FORMAT), args.lines):7.1f} µs/line")
    print(f"AccessLogger (JSON):                 "
          f"{per_line_us(logger(AccessLogger, None), args.lines):7.1f} µs/line")


if __name__ == "__main__":
    main()
