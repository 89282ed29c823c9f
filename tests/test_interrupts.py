"""Signal handling while requests are sent (batch_revoke/interrupts.py)."""

from __future__ import annotations

import asyncio
import os
import signal

from batch_revoke.interrupts import Interrupts
from batch_revoke.stop import Stop


async def test_a_signal_the_process_was_started_ignoring_stays_ignored():
    # nohup starts the process with SIGHUP ignored: a hang-up must not stop the run. A signal
    # with its default action (SIGTERM from a scheduler) is taken over, to stop it cleanly.
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGTERM)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stop = Stop()
    work = asyncio.ensure_future(asyncio.sleep(3600))
    interrupts = Interrupts(stop, work, grace=10.0)
    try:
        interrupts.install()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # would kill with 143
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.05)
        assert not stop.requested
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        interrupts.remove()
        work.cancel()
        for signum, handler in before.items():
            signal.signal(signum, handler)
