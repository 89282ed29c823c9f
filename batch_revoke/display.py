"""The live progress display for people at a terminal (rich); log files get plain lines."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as Bar

from batch_revoke.report import Progress


class LiveProgress(Bar):
    """Rows done of the total, calls/s, the pace, the counts so far and the time left, redrawn
    in place; log lines (retries, pauses) scroll above it."""

    def __init__(self) -> None:
        super().__init__(
            TextColumn("rows"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=Console(stderr=True),
            redirect_stderr=True,
        )
        self._rows: TaskID | None = None

    def __call__(self, progress: Progress) -> None:
        tally = progress.counts
        counts = " ".join(f"{status}:{count}" for status, count in tally.by_status.items())
        left = (
            "" if progress.seconds_left is None else f" · {_duration(progress.seconds_left)} left"
        )
        looked_up = f"{tally.lookups} looked up · " if tally.lookups else ""
        detail = (
            f"{looked_up}{progress.calls_per_second:.1f} calls/s · {progress.pace} · {counts}{left}"
        )
        if self._rows is None:
            self._rows = self.add_task("rows", total=progress.rows, detail=detail)
        self.update(self._rows, completed=tally.total, detail=detail)


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m" if hours else f"{minute}m{second:02d}s"
