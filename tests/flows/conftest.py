"""Fixtures of the flow tests: the module's `fake` Shoptet served on loopback, and settings for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.settings import Settings
from tests.servers import serve


@pytest.fixture
def shoptet_url(fake: FakeShoptet) -> Iterator[str]:
    """The module's fake Shoptet served on loopback."""
    with serve(fake.app) as url:
        yield url


@pytest.fixture
def settings(make_settings: Callable[..., Settings], shoptet_url: str) -> Settings:
    """Test settings pointing at the fake Shoptet with its token."""
    return make_settings(shoptet_base_url=shoptet_url, shoptet_api_token=DEFAULT_TOKEN)
