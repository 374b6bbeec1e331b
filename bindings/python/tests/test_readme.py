"""The README's Python quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks() -> list:
    text = README.read_text()
    section = text.split("## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_quickstart_runs(capsys: pytest.CaptureFixture) -> None:
    blocks = python_blocks()
    assert len(blocks) == 4
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "signer/1 ec P-256 ['sign', 'verify']"
    assert out[1] == "P-256 -----BEGIN PUBLIC KEY-----"
    assert "disabled" in out[2]
    assert out[3] == "['kek', 'rsa', 'signer']"
    # The secrets block continues with the quickstart's store.
    exec(compile(blocks[1], "README.md", "exec"), scope)
    out = capsys.readouterr().out.splitlines()
    assert out == ["<Secret db-password/1 content_type='text/plain' value=<7 bytes, redacted>>"]
    # Certificate objects, on the same store.
    exec(compile(blocks[2], "README.md", "exec"), scope)
    out = capsys.readouterr().out.splitlines()
    assert out == ["api 1 1 CN=api.example.com", "-----BEGIN CERTIFICATE REQUEST-----", "2"]
    assert scope["cert"].subject.rfc4514_string() == "CN=api.example.com"


def test_fixture_example(softhsm_store) -> None:  # type: ignore[no-untyped-def]
    scope: dict = {}
    exec(compile(python_blocks()[3], "README.md", "exec"), scope)
    scope["test_my_signer"](softhsm_store)
