"""Credentials of the external services: a Prefect Secret block first, then the environment.

Operators keep secrets in Prefect Secret blocks (`shoptet-api-token`, `comgate-secret`, ...); on a
laptop or in tests the `BACKOFFICE_*` environment variable (read through `Settings`) is enough.
A job without either fails at once with a message that names the variable to set.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from backoffice.errors import BackofficeError

logger = logging.getLogger(__name__)


class MissingCredential(BackofficeError):
    """A service credential is in neither its Prefect Secret block nor its environment variable."""

    code = "missing_credential"


def _prefect_api_configured() -> bool:
    # Without a Prefect API no block can exist, and asking would start an ephemeral server.
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def load_secret_block(block_name: str) -> str | None:
    """The value of the Prefect Secret block `block_name`, or None when there is none to read."""
    if not _prefect_api_configured():
        return None
    from prefect.blocks.system import Secret

    try:
        # _sync: a plain value even when called under an event loop (async_dispatch).
        block = cast("Secret[Any]", Secret.load(block_name, _sync=True))  # type: ignore[call-arg]
    except ValueError:
        return None  # Prefect's "Unable to find block document named ..."
    except Exception as exc:  # an unreachable API must not hide a valid env fallback
        logger.warning("Could not read Prefect Secret block %r (%s); using the environment", block_name, exc)
        return None
    value = block.get()
    return str(value) if value else None


def secret_value(block_name: str, setting_value: str | None, env_name: str) -> str:
    """The credential from Secret block `block_name`, else `setting_value`, else a clear error.

    `setting_value` is the already-read setting (e.g. `settings.shoptet_api_token`'s secret value);
    `env_name` is the variable an operator sets, e.g. `BACKOFFICE_SHOPTET_API_TOKEN`.
    """
    value = load_secret_block(block_name)
    if value:
        return value
    if setting_value:
        return setting_value
    raise MissingCredential(
        f"Missing credential: set the environment variable {env_name} "
        f"or create the Prefect Secret block '{block_name}'.",
        env_name=env_name,
    )
