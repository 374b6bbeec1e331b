"""pytest fixtures, registered through the ``pytest11`` entry point when hsmkit is
installed: an HSM in one line.

    def test_signing(softhsm_store):
        key = softhsm_store.create_key("k", "ec")
        ...
"""

from __future__ import annotations

from typing import Iterator

import pytest

from hsmkit._hsmkit import Store
from hsmkit.testing import softhsm_store as _softhsm_store
from hsmkit.testing import softhsm_token as _softhsm_token


@pytest.fixture
def softhsm_token() -> Iterator[str]:
    """The PKCS#11 URI of a fresh SoftHSM2 token, deleted after the test."""
    with _softhsm_token() as uri:
        yield uri


@pytest.fixture
def softhsm_store() -> Iterator[Store]:
    """A :class:`hsmkit.Store` on a fresh SoftHSM2 token, deleted after the test."""
    with _softhsm_store() as store:
        yield store
