"""The measures: raw baselines and Huddle's own paths, each returning a RunResult."""
