# SPDX-License-Identifier: Apache-2.0
"""Fixtures for registry unit tests: a file-backed store and a service harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import Harness

from pilotsock.registry.service import RegistryService
from pilotsock.registry.store import RegistryStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RegistryStore]:
    db = RegistryStore(tmp_path / "registry.db")
    yield db
    db.close()


@pytest.fixture
def harness(store: RegistryStore) -> Harness:
    return Harness(RegistryService(store, local_beacon_addr="127.0.0.1:9001"))
