"""Analytics' own settings, beside the shared ServiceSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from huddle_analytics.domain.suppression import DEFAULT_THRESHOLD


class AnalyticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUDDLE_ANALYTICS_", extra="ignore")

    # No published number from 1 to k-1 (CMS policy: 11); workforce analytics often uses 5.
    suppression_threshold: int = Field(default=DEFAULT_THRESHOLD, ge=2, le=100)
    # A month's records are released this long after it ends, so late events still join it.
    release_grace_hours: float = Field(default=24.0, ge=0)
    release_interval_seconds: float = Field(default=300.0, gt=0)
    # How often the warmer looks for networks whose stored results a month's closing or a late
    # event made stale, and precomputes them.
    warm_interval_seconds: float = Field(default=60.0, gt=0)
    # A network is warmed once its data version has not moved for this long: late events come
    # in runs, and a warm the next one interrupts is wasted (a month closing warms at once).
    warm_quiet_seconds: float = Field(default=300.0, ge=0)
    # Per computing transaction: a year's grouping and sorting stays in memory.
    query_work_mem_mb: int = Field(default=64, ge=4, le=2048)
    # Shown at once when a PHQ-9 answer endorses item 9: nothing else happens, nobody is told.
    crisis_line: str = "988"
    crisis_line_label: str = "Crisis line (call or text, 24/7)"
