"""A dry run: the same reading, checks and plan as a run, streamed straight into the result
file (planned, invalid, duplicate) with the calls it would make; no journal, no HTTP."""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime

from batch_revoke.chunker import planner_for, valid_rows
from batch_revoke.config import RunConfig, estimate
from batch_revoke.duplicates import SeenRows
from batch_revoke.identifiers import lookup_key, needs_lookup
from batch_revoke.interrupts import raising_interrupts
from batch_revoke.model import Counts, Endpoint, IdentifierType, Mode, Row, RowOutcome, Status
from batch_revoke.outputs import claim
from batch_revoke.report import RunReport
from batch_revoke.source import Source, no_records
from batch_revoke.writer import ResultPart, result_cells, write_results

_MODE = operator.attrgetter("mode")
_TYPE = operator.attrgetter("identifier_type")


def dry_run(config: RunConfig, now: Callable[[], datetime], handle_signals: bool) -> RunReport:
    """The dry run of `config`. A file found broken half-way is refused and its partial result
    removed."""
    with raising_interrupts(handle_signals):
        source = Source.open(config, whole=False)
        output = claim(config, now)
    planner = planner_for(config, source)
    # The customers rows name by an identifier, once each: their lookups are calls too. Kept
    # on disk like the planner's rows, so memory stays flat.
    customers = SeenRows()
    lookups = 0
    # Only a row named by an identifier is looked up: with neither the option nor the
    # column, no row is, and the usual file skips the check.
    may_look_up = (
        config.identifier_type is not IdentifierType.ID or "identifiertype" in source.field_index
    )
    tally = Counts()  # the rows not planned (invalid, duplicate), chunk by chunk
    planned_cells = {
        mode: result_cells(RowOutcome(0, Status.PLANNED, mode.endpoint)) for mode in Mode
    }

    def planned() -> Iterator[ResultPart]:
        nonlocal lookups, tally
        requests: Counter[Endpoint] = Counter()
        planned = 0
        for chunk, _ in source.chunks():
            verdicts = planner.classify(chunk)
            rows = valid_rows(verdicts)
            covered = planner.covering(rows)  # sent later, and only if still needed
            # The rows named by an identifier, found by a C-level pass: most rows are by id.
            typed = (
                itertools.compress(rows, map(IdentifierType.ID.__ne__, map(_TYPE, rows)))
                if may_look_up
                else ()
            )
            named = [
                (lookup_key(row.identifier_type, row.customer_id, config.default_region), row.row)
                for row in typed
                if needs_lookup(row)
            ]
            if named:
                keys = [(hash(key), hash(key + "\x1f"), row) for key, row in named]
                lookups += len(named) - len(customers.duplicates(keys))
            placed = [row for row in rows if row.row not in covered] if covered else rows
            for row in placed:
                # A revokeEarn row is a request of its own: counted, not made into a batch,
                # which costs a third of a dry run of a million of them (bench).
                if row.mode is Mode.EARN:
                    requests[Endpoint.REVOKE_EARN] += 1
                elif planner.place(row) is not None:
                    requests[row.mode.endpoint] += 1
            planned += len(rows)
            if len(rows) == len(verdicts):  # the usual chunk: every record planned
                yield chunk, list(map(planned_cells.__getitem__, map(_MODE, rows)))
                continue
            cells = [
                planned_cells[verdict.mode] if isinstance(verdict, Row) else result_cells(verdict)
                for verdict in verdicts
            ]
            tally += Counts.of(verdict for verdict in verdicts if not isinstance(verdict, Row))
            yield chunk, cells
        if not tally.total and not planned:
            raise source.named(no_records(source.path))
        requests.update(batch.endpoint for batch in planner.finish())
        sent = {endpoint: requests[endpoint] for endpoint in Endpoint if requests[endpoint]}
        tally += Counts({Status.PLANNED: planned}, requests=sent)

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
