"""Fixtures: a hub.yaml naming the sources pos, web and news, and a World on the test's store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from profile_helpers import SOURCES, World

from crm_hub.config import load_config
from crm_hub.config.models import HubConfig
from crm_hub.store import Store


@pytest.fixture
def project(tmp_path: Path, store_url: str) -> Callable[[str | None], HubConfig]:
    """Write hub.yaml (sources pos, web, news) and, when given, mappings/survivorship.yaml."""

    def write(survivorship: str | None = None) -> HubConfig:
        sources = "".join(
            f"  {name}:\n    type: file\n    path: data/{name}.csv\n    stream: customers\n"
            "    primary_key: [id]\n"
            for name in SOURCES
        )
        (tmp_path / "hub.yaml").write_text(f"store: {store_url}\nsources:\n{sources}")
        if survivorship is not None:
            (tmp_path / "mappings").mkdir(exist_ok=True)
            (tmp_path / "mappings" / "survivorship.yaml").write_text(survivorship)
        return load_config(tmp_path / "hub.yaml")

    return write


@pytest.fixture
def world(store: Store, project: Callable[[str | None], HubConfig]) -> Callable[..., World]:
    """A World with the given survivorship.yaml text (None: the built-in defaults)."""

    def make(survivorship: str | None = None) -> World:
        return World(store, project(survivorship))

    return make
