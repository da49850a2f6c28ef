# Spine-MRI referral decision support: gunicorn serving wsgi:app, the decision log on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REFERRAL_API_DATABASE=/data/decisions.sqlite \
    REFERRAL_API_RULES_DIR=/app/rules \
    REFERRAL_API_BIND=0.0.0.0:8000

WORKDIR /app
# Dependencies first (pinned) so code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

COPY pyproject.toml README.md wsgi.py gunicorn.conf.py ./
COPY referral_api ./referral_api
COPY rules ./rules
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin referral \
    && mkdir -p /data && chown referral:referral /data

USER referral
# The log, its WAL, the generated secret key and backups live here (all 0600): mount a volume.
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# init-db is idempotent and runs before gunicorn forks its workers (never by the workers); it
# also refuses a secret key that does not match the one that made the stored patient hashes.
# umask 077: anything else the service creates (metric files, backups) is private too.
# Keys and backups are made inside the running container, as this same user:
#   docker exec <container> referral-api keys create --role evaluator --label ehr
CMD ["sh", "-c", "umask 077 && referral-api init-db && exec gunicorn --config gunicorn.conf.py wsgi:app"]
