"""Band heights measured by inference tests are remembered in a temporary cache folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _band_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FCN_STUDIO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
