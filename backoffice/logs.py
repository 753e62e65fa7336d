"""Keys never reach a log: a filter that masks them, and the logging set-up the sidecar runs under.

A function key may arrive as `?code=…`, and uvicorn's access log prints every request line with
its query string; an exception text may quote a URL. `RedactKeys` rewrites `code=<anything>` (and
`key=`, `token=`, `secret=`, `password=`, `x-functions-key: …`) to `…=***`, masks anything shaped
like one of our keys (`bok_…`) and the secrets it is given (the bootstrap admin key), in the message,
its arguments and its traceback, before any handler formats the record.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from uvicorn.config import LOGGING_CONFIG

from backoffice.queue.keys import KEY_PREFIX

MASK = "***"
# A parameter that carries a secret (query strings, key=value logs), and the key header however
# it is shown (`x-functions-key: k`, `{'x-functions-key': 'k'}`, `("x-functions-key", "k")`).
_PARAM = re.compile(
    r"(?i)(?<![\w-])((?:x-functions-)?key|code|api[_-]?key|token|secret|password)=[^&\s\"',;]+"
)
_HEADER = re.compile(r"(?i)(x-functions-key['\"]?\s*[:,]\s*b?['\"]?)[^\s'\",;&]+")
_KEY_MATERIAL = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_\-%]{8,}")
# Shorter secrets would mask ordinary words; a real key is far longer.
MIN_SECRET_LENGTH = 8
_PLAIN = (str, int, float, bool, type(None))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every key in it replaced by `***`."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, MASK)
    text = _PARAM.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _HEADER.sub(lambda m: m.group(1) + MASK, text)
    return _KEY_MATERIAL.sub(MASK, text)


class RedactKeys(logging.Filter):
    """Masks keys in every record it sees; put it on handlers, so records of every logger pass it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)

    def _clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def _clean_arg(self, arg: object) -> object:
        if isinstance(arg, str):
            return self._clean(arg)
        if isinstance(arg, _PLAIN):
            return arg
        shown = str(arg)
        cleaned = self._clean(shown)
        return cleaned if cleaned != shown else arg

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format call: logging reports it itself, unchanged
            return True
        if self._clean(message) != message:
            self._rewrite(record, message)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is shown redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True

    def _rewrite(self, record: logging.LogRecord, message: str) -> None:
        # Keep the arguments' shape when cleaning them suffices: uvicorn's access formatter
        # unpacks them (client, method, path, version, status).
        if isinstance(record.args, tuple) and isinstance(record.msg, str):
            args = tuple(self._clean_arg(a) for a in record.args)
            try:
                shown = record.msg % args if args else record.msg
            except (TypeError, ValueError):
                shown = None
            if shown is not None and self._clean(shown) == shown:
                record.args = args
                return
        record.msg = self._clean(message)
        record.args = None


def log_config(secrets: Iterable[str] = ()) -> dict[str, Any]:
    """uvicorn's logging configuration with RedactKeys on every handler, and our loggers on it."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_keys": {"()": RedactKeys, "secrets": list(secrets)}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_keys"]
    # Our own modules (and libraries) log through the root logger: the same handler, redacted.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
