"""Benchmarks and harnesses (run as ``python scripts/<name>.py``); a package so that the
hardening tests import them as ``scripts.<name>`` without changing ``sys.path``."""
