"""pytest fixtures for the hub/provenance/lock tests: `pytest_plugins = ["hub_plugin"]` in a test module.

One olah per test session (per xdist worker), serving the repos hubfixtures.build_world() makes.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubfixtures import HubWorld, build_world


@pytest.fixture(scope="session")
def hub_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubWorld]:
    world = build_world(tmp_path_factory.mktemp("hubworld"))
    try:
        yield world
    finally:
        world.olah.stop()


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh auditor cache per test, and no Hub settings leaking in from the environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUDITOR_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return cache
