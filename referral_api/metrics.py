"""Prometheus metrics: what the service did, per route, decision and credential failure.

``GET /metrics`` serves the text exposition format (:mod:`referral_api.api.metrics`). Under
gunicorn every worker counts into memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode, set up by ``gunicorn.conf.py``), and a scrape adds up
the files of all workers, dead ones included, so counters never go backwards while the server
runs. Without that variable (tests, ``flask run``) each app counts in its own registry.

Label values are bounded and never carry patient data or credentials: route *templates*
(``/v1/decisions/<decision_id>``, not the id), status codes, contract enums (channel,
appropriateness, urgency, safety status), and fixed reason codes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "InstrumentedLog", "InstrumentedWriter",
           "Metrics", "ServiceState", "instrument_writer"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "referral"
UNMATCHED_ROUTE = "unmatched"  # 404s: the raw path could carry anything, so it is not a label

#: Request latency buckets (seconds): a decision takes a few ms; audit reads up to the 3 s limit.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Append latency (seconds): one fsync is ~0.1-2 ms; waiting for the write lock adds more.
APPEND_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus-client runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The metric families of one app (see ``docs/operations.md`` for each)."""

    def __init__(self) -> None:
        # No ``*_created`` series: multiprocess mode has none either, so both modes agree.
        disable_created_metrics()
        self.multiprocess = multiprocess_dir() is not None
        # Multiprocess mode: values live in the shared files, and a scrape builds a registry
        # over them; registering here as well would count each sample twice.
        registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from the app receiving a request to its response, by route and status.",
            ["route", "method", "status"], buckets=REQUEST_BUCKETS, registry=registry)
        self.decisions = Counter(
            f"{PREFIX}_decisions", "Decisions recorded, by channel and result.",
            ["channel", "appropriateness", "urgency", "safety_status"], registry=registry)
        self.append_seconds = Histogram(
            f"{PREFIX}_decision_log_append_seconds",
            "Time to durably append one batch of decisions (lock wait, insert, fsync).",
            buckets=APPEND_BUCKETS, registry=registry)
        self.batch_size = Histogram(
            f"{PREFIX}_decision_log_batch_size", "Decisions committed per log transaction.",
            buckets=BATCH_BUCKETS, registry=registry)
        self.log_unavailable = Counter(
            f"{PREFIX}_decision_log_unavailable",
            "Requests answered 503 because the decision log could not be read or written.",
            registry=registry)
        self.auth_failures = Counter(
            f"{PREFIX}_auth_failures", "Failed authentications (answered 401) by reason.",
            ["reason"], registry=registry)
        self.auth_throttled = Counter(
            f"{PREFIX}_auth_throttled",
            "Failed authentications answered 429 (client over the limit), by reason.",
            ["reason"], registry=registry)
        # Labelled children by label values: ``labels()`` costs ~3 µs a call (a lock and a
        # tuple) and the label sets are few (routes x methods x statuses), so each is looked
        # up once per process.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._decision_children: dict[tuple[str, ...], Any] = {}

    # -- recording -----------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (self.requests.labels(*labels), self.request_seconds.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_decision(self, record: dict[str, Any]) -> None:
        """Count one newly recorded decision (its contract enums only)."""
        safety = record.get("safety")
        key = (str(record.get("channel")), str(record.get("appropriateness")),
               str(record.get("urgency")),
               str(safety.get("status") if isinstance(safety, dict) else None))
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        child.inc()

    # -- exposition ----------------------------------------------------------------------

    def exposition(self, state: Collector | None = None) -> bytes:
        """The text exposition of every family, plus ``state`` (read at scrape time)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            assert self.registry is not None
            registry = self.registry
        text = generate_latest(registry)
        if state is not None:
            extra = CollectorRegistry(auto_describe=False)
            extra.register(state)
            text += generate_latest(extra)
        return text


class ServiceState(Collector):
    """Gauges read when scraped: the rule set in force and the head of the decision chain.

    Read at scrape time rather than kept in the multiprocess files, so a worker that started
    before a new rule set came into force cannot report a stale version.
    """

    def __init__(self, in_force: Callable[[], Any],
                 head: Callable[[], dict[str, Any]]) -> None:
        self._in_force = in_force
        self._head = head

    def collect(self) -> Iterator[Any]:
        """Yield the rule set info and the chain head gauges (the latter 0-up when unreadable)."""
        info = InfoMetricFamily(f"{PREFIX}_ruleset", "The rule set version in force now.")
        try:
            ruleset = self._in_force()
        except LookupError:
            ruleset = None
        if ruleset is not None:
            info.add_metric([], {"id": ruleset.id, "version": ruleset.version,
                                 "sha256": ruleset.sha256})
        yield info
        heads = GaugeMetricFamily(
            f"{PREFIX}_chain_head_seq", "Sequence number of the last record of the chain.",
            labels=["chain"])
        up = GaugeMetricFamily(f"{PREFIX}_decision_log_up",
                               "1 when the decision log could be read at this scrape.")
        try:
            heads.add_metric(["decisions"], self._head()["count"])
            up.add_metric([], 1)
        except Exception:  # the scrape must still answer: the log being down is the news
            up.add_metric([], 0)
        yield heads
        yield up


class InstrumentedLog:
    """Wraps a decision log's ``append_many`` to time it and count what it recorded.

    Everything else is passed through, so it stands wherever the log does (the group-commit
    writer takes it as its log).
    """

    def __init__(self, log: Any, metrics: Metrics) -> None:
        self._log = log
        self._metrics = metrics

    def append_many(self, news: Sequence[Any]) -> list[tuple[dict, bool]]:
        """``log.append_many``, timed; each newly created decision counted."""
        started = time.perf_counter()
        results = self._log.append_many(news)
        metrics = self._metrics
        metrics.append_seconds.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(news))
        for record, created in results:
            if created:
                metrics.observe_decision(record)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


class InstrumentedWriter:
    """A decision writer timed as a whole (for a writer without a batch log to wrap)."""

    def __init__(self, writer: Any, metrics: Metrics) -> None:
        self._writer = writer
        self._metrics = metrics

    def append(self, new: Any) -> tuple[dict, bool]:
        """``writer.append``, timed; a newly created decision counted."""
        started = time.perf_counter()
        record, created = self._writer.append(new)
        self._metrics.append_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(1)
        if created:
            self._metrics.observe_decision(record)
        return record, created


def instrument_writer(writer: Any, metrics: Metrics) -> Any:
    """Count and time what ``writer`` appends; returns the writer to use.

    A group-commit writer (one with a ``log`` it commits batches to) gets that log wrapped,
    so each transaction is timed once with its batch size; any other writer is wrapped whole.
    """
    batch_log = getattr(writer, "log", None)
    if batch_log is not None and hasattr(batch_log, "append_many"):
        writer.log = InstrumentedLog(batch_log, metrics)
        return writer
    return InstrumentedWriter(writer, metrics)
