"""The ``chatapi`` logger, and the opt-in stderr handler behind ``CHATAPI_LOG``.

The library never installs a handler on its own: applications configure logging as they
like. Setting ``CHATAPI_LOG=debug`` (or ``info``) before import adds one stderr handler to
the ``chatapi`` logger, for a quick look at what the client does. Log records carry method,
path, status, timings and event counts; never bodies, headers or the API key.
"""

from __future__ import annotations

import logging
import os

__all__ = ["ENV_LOG", "logger", "setup_from_env"]

ENV_LOG = "CHATAPI_LOG"
logger = logging.getLogger("chatapi")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_HANDLER_NAME = "chatapi-env-handler"


def setup_from_env() -> logging.Handler | None:
    """Add a stderr handler when ``CHATAPI_LOG`` asks for one; idempotent."""
    level = _LEVELS.get(os.environ.get(ENV_LOG, "").strip().lower())
    if level is None:
        return None
    for handler in logger.handlers:
        if handler.get_name() == _HANDLER_NAME:
            return handler
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
