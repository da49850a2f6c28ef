"""The hardening suite: security, engine properties, OpenAPI conformance, the group-commit
writer, and the load and fault tests that drive the harnesses in ``scripts/`` (imported as the
``scripts`` package). Database and app fixtures are shared (tests/conftest.py)."""
