"""`python -m huddle_bench`: the benchmark suite's command line (filled in by issue #6)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("the benchmark suite is being built (issue #6)")


if __name__ == "__main__":
    main()
