"""gunicorn entry point: ``gunicorn wsgi:app``.

Importing this builds the app (settings, rules) but opens no database connection: each worker
opens its own after the fork.
"""

from referral_api import create_app

app = create_app()
