"""gunicorn settings for the decision service (``referral-api serve`` uses this file)."""

import os
import shutil
import tempfile
from pathlib import Path

# Prometheus multiprocess mode: every worker writes its counters to files in this directory
# and a scrape of /metrics adds them up. It must be in the environment before any process
# imports prometheus_client (the workers inherit it). An operator may choose the directory;
# otherwise a private one is made for this server and removed when it stops.
_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A marker file says the directory was made here (this file is read again on a HUP reload,
# when the variable is already set, so a module-level flag would forget).
_OWNED_MARKER = ".made-by-gunicorn-conf"
if not os.environ.get(_METRICS_DIR_ENV):
    os.environ[_METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="referral-api-metrics-")
    (Path(os.environ[_METRICS_DIR_ENV]) / _OWNED_MARKER).touch()

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
# Access log: one JSON object a line (REFERRAL_API_LOG_FORMAT=text for a human line), with the
# route template and never the query string (audit filters such as ?patient= carry patient
# ids). The logger class formats only the fields it writes (access_log_format is not used).
accesslog = "-"
errorlog = "-"
logger_class = "referral_api.access_log.AccessLogger"
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


def on_starting(server):
    """Start from empty metric files: counters of an earlier run are not this run's."""
    directory = Path(os.environ[_METRICS_DIR_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    # Only prometheus-client's own file names: never any other *.db that may share the folder.
    for kind in ("counter", "gauge_*", "histogram", "summary"):
        for stale in directory.glob(f"{kind}_*.db"):
            stale.unlink()


def child_exit(server, worker):
    """A worker exited: drop its live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this configuration made (never one an operator chose)."""
    directory = Path(os.environ[_METRICS_DIR_ENV])
    if (directory / _OWNED_MARKER).exists():
        shutil.rmtree(directory, ignore_errors=True)
