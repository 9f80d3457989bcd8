"""Huddle's benchmarks (issue #6): measured against raw baselines in the same run."""
