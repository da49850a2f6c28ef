"""``GET /metrics``: Prometheus text exposition (see :mod:`referral_api.metrics`).

An admin key is required, unless ``REFERRAL_API_METRICS_PUBLIC=1`` opens it to a scrape
network that only the monitoring system reaches. Nothing in it is patient data, but route
counts and key failures still tell an outsider how the service is used.
"""

from __future__ import annotations

from flask import Response

from ..auth import ADMIN, authenticate_api_key, authorize
from ..context import services
from ..metrics import CONTENT_TYPE_LATEST, ServiceState
from . import bp


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric family of the service, summed over the workers of this host."""
    svc = services()
    if not svc.settings.metrics_public:
        authorize(authenticate_api_key(), (ADMIN,))
    # The rule set in force at the decision clock (the real time, unless a test pins it).
    state = ServiceState(lambda: svc.registry.in_force(svc.settings.clock()), svc.log.head)
    return Response(svc.metrics.exposition(state), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
