"""A dry run: the same reading, checks and plan as a run, streamed straight into the result
file (planned, invalid, duplicate) with the calls it would make; no journal, no HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from batch_revoke.chunker import SeenRows
from batch_revoke.config import RunConfig
from batch_revoke.interrupts import raising_interrupts
from batch_revoke.lookup import lookup_key, needs_lookup
from batch_revoke.model import Endpoint, Mode, Record, Row, RowOutcome, Status, Tally
from batch_revoke.outputs import claim
from batch_revoke.plan import planner_for
from batch_revoke.reader import no_records
from batch_revoke.report import RunReport, estimate
from batch_revoke.source import Source
from batch_revoke.writer import result_cells, write_results


def dry_run(config: RunConfig, now: Callable[[], datetime], handle_signals: bool) -> RunReport:
    """The same reading, checks and plan as a run, streamed straight into the result file:
    nothing is sent, so nothing needs a journal. A file found broken half-way is refused
    and its partial result removed."""
    with raising_interrupts(handle_signals):
        source = Source.open(config, whole=False)
        output = claim(config, now)
    planner = planner_for(config, source)
    # The customers rows name by an identifier, once each: their lookups are calls too. Kept
    # on disk like the planner's rows, so memory stays flat.
    customers = SeenRows()
    lookups = 0
    tally = Tally()
    planned_cells = {
        mode: result_cells(RowOutcome(0, Status.PLANNED, mode.endpoint)) for mode in Mode
    }

    def planned() -> Iterator[tuple[Record, list[str]]]:
        nonlocal lookups
        requests: dict[Endpoint, int] = dict.fromkeys(Endpoint, 0)
        planned = 0
        for chunk, _ in source.chunks():
            verdicts = planner.classify(chunk)
            rows = [v for v in verdicts if isinstance(v, Row)]
            covered = planner.covering(rows)  # sent later, and only if still needed
            named = [
                (lookup_key(row.identifier_type, row.customer_id, config.default_region), row.row)
                for row in rows
                if needs_lookup(row)
            ]
            if named:
                keys = [(hash(key), hash(key + "\x1f"), row) for key, row in named]
                lookups += len(named) - len(customers.duplicates(keys))
            for record, verdict in zip(chunk, verdicts, strict=True):
                if isinstance(verdict, Row):
                    planned += 1
                    if verdict.row not in covered and (batch := planner.place(verdict)):
                        requests[batch.endpoint] += 1
                    yield record, planned_cells[verdict.mode]
                else:
                    tally.add(verdict)
                    yield record, result_cells(verdict)
        if not tally.total and not planned:
            raise source.named(no_records(source.path))
        for batch in planner.finish():
            requests[batch.endpoint] += 1
        tally.by_status[Status.PLANNED] = planned
        tally.requests = {endpoint: count for endpoint, count in requests.items() if count}

    try:
        with raising_interrupts(handle_signals):
            write_results(output, source.columns, planned(), excel=config.excel)
    except BaseException:
        output.unlink(missing_ok=True)  # a dry run refused or interrupted leaves nothing
        raise
    finally:
        customers.close()
        planner.close()
    calls = sum(tally.requests.values()) + lookups
    plan = estimate(calls, config.rate_limit, lookups)
    return RunReport(output, tally, 0.0, True, estimate=plan)
