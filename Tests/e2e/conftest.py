"""Fixtures of the SDK end-to-end suite; the fake upstream, the server and the helpers live in e2e_support.py."""
from e2e_support import admin, base_url, new_key, sluice, upstream  # noqa: F401  (pytest fixtures)
