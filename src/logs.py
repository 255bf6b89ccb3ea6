"""Log set-up for the service: one line per record on stderr, at LOG_LEVEL."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(level: str, *, access_log: bool = False) -> None:
    """Send the service's own loggers (`src.*`) to stderr; uvicorn keeps its own.

    The access log (`src.access`) writes bare JSON lines, one per request, when enabled; the audit
    log (`src.audit`, src/tenants/access.py) writes bare JSON lines always.
    """
    logger = logging.getLogger("src")
    logger.setLevel(level.upper())
    if not any(getattr(handler, "_ml_service", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._ml_service = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
    access = logging.getLogger("src.access")
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    if not access.handlers:
        access_handler = logging.StreamHandler()
        access_handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(access_handler)
    access.propagate = False
    audit = logging.getLogger("src.audit")  # refusals for scope, model or rate, and admin actions: always on
    audit.setLevel(logging.INFO)
    if not audit.handlers:
        audit_handler = logging.StreamHandler()
        audit_handler.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(audit_handler)
    audit.propagate = False
