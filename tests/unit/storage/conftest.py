"""Fixtures for the storage tests: the S3 server (tests/support/s3_server.py) and an
isolated ``HEADWATER_HOME`` (tests/support/isolated_home.py), so no test reads or writes
``~/.headwater``."""

from isolated_home import headwater_home  # noqa: F401  (autouse fixture)
from s3_server import broken_endpoint, s3, s3_server  # noqa: F401  (fixtures shared with tests/api)
