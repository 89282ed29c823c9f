"""`batch-revoke` and `python -m batch_revoke`: the one exit point."""

import sys

from batch_revoke.startup import hold_interrupts

# First of all: importing the rest takes about a second, and a scheduler may stop us in it.
hold_interrupts()


def main() -> int:
    from batch_revoke.cli import main as command  # after the handlers, on purpose

    return command()


if __name__ == "__main__":
    sys.exit(main())
