"""Fixtures of the flow tests: the module's `fake` Shoptet served on loopback, and settings for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
def settings(database_url: str, tmp_path: Path, shoptet_url: str) -> Settings:
    """Test settings pointing at the fake Shoptet with its token."""
    return Settings(
        database_url=database_url,
        admin_key="test-admin-key",  # type: ignore[arg-type]
        output_dir=tmp_path / "output",
        shoptet_base_url=shoptet_url,
        shoptet_api_token=DEFAULT_TOKEN,  # type: ignore[arg-type]
    )
