"""`batch-revoke` and `python -m batch_revoke`: the one exit point."""

import signal
import sys

from batch_revoke.interrupts import SIGNALS, hold_interrupts

# First of all: importing the rest takes a few hundred milliseconds, and a scheduler may stop
# us in it.
hold_interrupts()


def main() -> int:
    from batch_revoke.cli import cli  # after the handlers, on purpose

    status = cli.main(prog_name="batch-revoke", standalone_mode=False)
    # The outcome is decided and told: an interrupt from here to the end changes nothing.
    # (Python puts the default handlers back as it shuts down, and those end with 130/143.)
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    return status


if __name__ == "__main__":
    sys.exit(main())
