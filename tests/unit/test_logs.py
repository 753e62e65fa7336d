"""RedactKeys (backoffice/logs.py): keys are masked in messages, arguments and tracebacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from backoffice.logs import RedactKeys, log_config, redact

ADMIN_SECRET = "the-bootstrap-admin-secret"
OUR_KEY = "bok_Zq3xY9wVb2Nc8Md7Le6Kf5Jg4Hh"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through a RedactKeys handler into a string."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactKeys([ADMIN_SECRET]))
    logger = logging.getLogger("tests.unit.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def test_an_access_log_line_keeps_its_shape_with_the_key_masked() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/api/tasks/lock?code={ADMIN_SECRET}&x=1", "1.1", 200),
        None,
    )
    assert RedactKeys([ADMIN_SECRET]).filter(record)
    formatter = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s", use_colors=False)
    line = formatter.format(record)
    assert line == "127.0.0.1:5000 POST /api/tasks/lock?code=***&x=1 HTTP/1.1 200 OK"


def test_keys_in_messages_arguments_and_tracebacks_are_masked(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    logger.warning("calling %s?code=%s", "http://sidecar/api/tasks", "any-key-at-all")
    logger.warning("headers %s", {"x-functions-key": OUR_KEY})
    logger.warning("the admin key is %s", ADMIN_SECRET)
    try:
        raise ValueError(f"bad url http://x/?code={OUR_KEY}")
    except ValueError:
        logger.exception("request failed")
    text = out.getvalue()
    for secret in ("any-key-at-all", OUR_KEY, ADMIN_SECRET):
        assert secret not in text
    assert "calling http://sidecar/api/tasks?code=***" in text
    assert "ValueError: bad url http://x/?code=***" in text


def test_plain_words_and_other_parameters_stay() -> None:
    line = "exit code: 1, status_code=200, idempotency_key=2026-11-28, short"
    assert redact(line, ["short"]) == line.replace("short", "***")
    assert RedactKeys(["short"]).secrets == ()  # too short to be a key: not masked everywhere
    assert redact("?task_type=A&Code=k1&limit=5") == "?task_type=A&Code=***&limit=5"


def test_the_sidecar_log_config_filters_every_handler_and_the_root_logger() -> None:
    config = log_config([ADMIN_SECRET])
    assert all(h["filters"] == ["redact_keys"] for h in config["handlers"].values())
    assert config["root"]["handlers"] == ["default"]
