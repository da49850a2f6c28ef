"""The baseline of ``make bench``: a bare Flask app that echoes a JSON body back.

Served by the same gunicorn settings as the real service (``gunicorn.conf.py``), it measures
what the stack (gunicorn, Werkzeug, Flask, JSON in and out) costs with no work at all, so the
decision endpoint's throughput can be quoted as a fraction of it.
"""

from __future__ import annotations

from flask import Flask, Response, json, request

app = Flask(__name__)


@app.post("/v1/decisions")
def echo() -> Response:
    """Parse the JSON body and send it back, compact, with 201 like the real endpoint."""
    body = request.get_json()
    return Response(json.dumps(body, separators=(",", ":")), status=201,
                    mimetype="application/json")
