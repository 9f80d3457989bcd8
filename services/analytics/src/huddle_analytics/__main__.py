from huddle_runtime.cli import service_cli

from huddle_analytics.service import DEFINITION


def main() -> None:
    service_cli(DEFINITION)()


if __name__ == "__main__":
    main()
