"""What a service's lifespan does besides starting and stopping its parts."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from huddle_runtime.service import ServiceDefinition, build_app
from huddle_runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

ProbeFactory = Callable[..., Awaitable[ServiceSettings]]


async def test_what_start_up_built_is_kept_out_of_full_collections(
    probe: ProbeFactory, tmp_path: Path
) -> None:
    settings = await probe()
    definition = ServiceDefinition(
        name=settings.service,
        title="probe",
        description="a service with nothing of its own",
        default_port=settings.http_port,
        migrations=tmp_path,
        publishes=False,
    )
    app = build_app(definition, settings)
    gc.unfreeze()
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
