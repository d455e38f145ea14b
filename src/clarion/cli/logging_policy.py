"""How ``clarion serve`` and ``clarion worker`` log: one format, and the libraries that would
print data held above DEBUG whatever ``CLARION_LOG_LEVEL`` says.

``CLARION_LOG_LEVEL=debug`` puts the root logger at DEBUG, and with it every library's debug
logging: aiosqlite then logs each call it runs with its arguments, i.e. every SQL statement
with its parameters (emails, device tokens, callback ``Authorization`` headers); hpack/h2 log
header blocks (an APNs ``authorization: bearer`` JWT); SQLAlchemy's engine logger, should it
be switched on, prints result rows. Clarion's own debug messages are what debug is for, so
these loggers are pinned to the level below, and the engines are created with
``hide_parameters=True`` besides (``clarion.store.db``). ``tests/e2e/test_debug_log_secrets.py``
greps a debug log for every secret it handled.
"""

from __future__ import annotations

import logging

# logger name -> the most verbose level it may have
QUIET: dict[str, int] = {
    "aiosqlite": logging.INFO,  # DEBUG: every call with its arguments (SQL parameters)
    "sqlalchemy": logging.WARNING,  # INFO: statements; DEBUG: rows
    "hpack": logging.INFO,  # DEBUG: header blocks as encoded and decoded
    "h2": logging.INFO,  # DEBUG: frames and their headers
}


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, floor in QUIET.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(floor, logger.getEffectiveLevel()))
