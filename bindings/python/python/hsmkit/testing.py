"""A test rig: throw-away SoftHSM2 tokens, for your own test suites.

    with hsmkit.testing.softhsm_token() as uri:
        store = hsmkit.open(uri)
        ...

pytest users get the same as fixtures (``softhsm_token``, ``softhsm_store``) from the
plugin hsmkit installs; see :mod:`hsmkit.pytest_plugin`.

SoftHSM2 must be installed (``apt-get install softhsm2``; ``HSMKIT_PKCS11_MODULE`` names
the module if it is not in a usual place). SoftHSM2 reads its configuration from
``SOFTHSM2_CONF`` once per process, when the module first loads: if it is not set, the rig
sets it to a private directory for this process (removed at exit), so tests never touch
the system's tokens.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from typing import Iterator, Optional

from hsmkit._hsmkit import SoftHsmToken, Store
from hsmkit._hsmkit import open as _open

__all__ = ["softhsm_token", "softhsm_store", "USER_PIN"]

#: The user PIN of rig tokens (also in their URIs as ``pin-value``).
USER_PIN = "1234"

_private_dir: Optional[str] = None


def _ensure_config() -> None:
    global _private_dir
    if os.environ.get("SOFTHSM2_CONF") or _private_dir is not None:
        return
    _private_dir = tempfile.mkdtemp(prefix="hsmkit-softhsm-")
    atexit.register(shutil.rmtree, _private_dir, True)
    # The rig writes the file (with a token directory beside it) on first use.
    os.environ["SOFTHSM2_CONF"] = os.path.join(_private_dir, "softhsm2.conf")


@contextlib.contextmanager
def softhsm_token() -> Iterator[str]:
    """A fresh, empty, initialised SoftHSM2 token; yields its PKCS#11 URI (with module
    path and PIN) and deletes the token on exit."""
    _ensure_config()
    token = SoftHsmToken()
    try:
        yield token.uri
    finally:
        token.close()


@contextlib.contextmanager
def softhsm_store() -> Iterator[Store]:
    """A :class:`hsmkit.Store` on a fresh SoftHSM2 token, deleted on exit."""
    with softhsm_token() as uri:
        yield _open(uri)
