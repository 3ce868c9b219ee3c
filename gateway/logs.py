"""The access log without secrets: uvicorn logs each request's path with its query string, which
may hold a signed link's `sig=` (or an old client's `access_token=` or `token=`); their values
are written as REDACTED. (Headers, Authorization among them, are never logged.)"""

from __future__ import annotations

import logging
import re

SECRET = re.compile(r"(?i)\b(sig|access_token|token)=[^&\s\"]*")
ACCESS_LOGGER = "uvicorn.access"


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(SECRET.sub(r"\1=REDACTED", a) if isinstance(a, str) else a for a in record.args)
        record.msg = SECRET.sub(r"\1=REDACTED", str(record.msg))
        return True


def redact_access_log() -> None:
    """Puts the filter on uvicorn's access logger (once; uvicorn has configured it by then)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
