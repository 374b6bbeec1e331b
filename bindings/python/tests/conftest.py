"""Every API test runs on both backends: the software keystore and a SoftHSM2 token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

import hsmkit


def keystore(tmp_path: Path) -> hsmkit.Store:
    """A new encrypted keystore, unlocked by a key file (a passphrase costs an Argon2 run
    per open; test_open.py covers passphrases)."""
    key_file = tmp_path / "store.key"
    key_file.write_text(os.urandom(32).hex())
    return hsmkit.open(f"file://{tmp_path / 'store'}", key_file=key_file)


@pytest.fixture(params=["soft", "pkcs11"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[hsmkit.Store]:
    """A fresh, empty store on each backend. `softhsm_store` is hsmkit's own pytest
    fixture, from the plugin the wheel registers."""
    if request.param == "soft":
        yield keystore(tmp_path)
    else:
        yield request.getfixturevalue("softhsm_store")
