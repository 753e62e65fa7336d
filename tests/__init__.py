"""The test suite. tests.helpers' asserts are rewritten like a test module's, for detailed failures."""

import pytest

pytest.register_assert_rewrite("tests.helpers")
