"""gunicorn settings for the decision service (``referral-api serve`` uses this file)."""

import os

bind = os.environ.get("REFERRAL_API_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("REFERRAL_API_WORKERS", "2"))
worker_class = "sync"
# No preload: the app (and any SQLite connection) is created in each worker after the fork.
preload_app = False
timeout = 30
graceful_timeout = 10
keepalive = 5
# Bound request line and headers: bodies are bounded by the app (64 KiB).
limit_request_line = 8190
limit_request_fields = 100
# Access log without the query string: audit filters such as ?patient= carry patient ids.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("REFERRAL_API_LOG_LEVEL", "info")
# gunicorn 23+ opens a runtime control socket under $HOME by default; this service is managed
# by its supervisor (systemd, Docker), so no extra management surface is opened.
control_socket_disable = True


def _drop_server_banner() -> None:
    """Send no ``Server`` header: the server's name and version help only an attacker.

    gunicorn has no setting for it; its response class builds the default headers in one
    method, which is wrapped here (gunicorn is pinned in requirements.lock; a test checks the
    header is absent under the real server).
    """
    from gunicorn.http import wsgi

    if getattr(wsgi.Response.default_headers, "_no_banner", False):
        return
    original = wsgi.Response.default_headers

    def default_headers(self):
        return [line for line in original(self) if not line.startswith("Server:")]

    default_headers._no_banner = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers


_drop_server_banner()
