"""The failed-authentication throttle: per client address, per host, never against a valid key.

Policy (api-v1.md, Credentials, and issue 14):

- only *failed* authentications are counted and only they can be answered 429: the limiter is
  consulted after a credential has been checked and found wanting, so a request with a valid
  credential is never throttled, whatever its address did before (one misconfigured EHR
  client behind the hospital's NAT cannot lock out the clinicians behind the same address);
- the client is the address seen through ``REFERRAL_API_TRUSTED_PROXIES`` reverse proxies
  (werkzeug's ProxyFix, installed by ``create_app``);
- failures are counted in storage every worker shares (``Store.auth_failures``; SQLite: the
  database file), so the limit holds per host, and across hosts on a shared backend;
- defaults keep the contract: never 429 before 20 failures in one minute;
- the throttle fails open: when the counters cannot be read or written, the request gets its
  401 and an error is logged, because refusing valid work is worse here than a lost count.

Guessing a key is not what this protects against (a key carries 256 random bits); it bounds
the work and the log noise a misbehaving client causes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from referral_api.store.interface import AuthFailureCounter

__all__ = ["FailureLimiter"]

log = logging.getLogger(__name__)


class FailureLimiter:
    """Counts failed authentications per client and says when to answer 429 instead of 401."""

    def __init__(self, counter: AuthFailureCounter, *, limit: int, window_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("the limit must be at least 1 and the window positive")
        self.counter = counter
        self.limit = limit
        self.window_s = window_s
        # Wall-clock seconds: the count is shared between processes (and hosts), which share
        # no monotonic clock.
        self.clock = clock

    def failure(self, client: str) -> int | None:
        """Count a failed authentication of ``client``.

        Returns None when it is answered as a plain failure (401), or the seconds for
        ``Retry-After`` when the client is over the limit (429).
        """
        try:
            return self.counter.register_failure(client, self.clock(), self.window_s, self.limit)
        except Exception as exc:  # fail open: never refuse because the counter is down
            log.error("failed-authentication counter unavailable (%s); not throttling",
                      type(exc).__name__)
            return None
