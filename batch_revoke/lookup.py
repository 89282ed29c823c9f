"""Customer lookups: the customer id behind a mobile, email, externalId or card number, asked
once per customer in a run (however many rows name it, however it is spelled), through the
sender's pace and retries, each answer durable in the journal so a resume never asks again."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from batch_revoke.answers.replies import lookup_answer, lookup_failure_of
from batch_revoke.client import lookup_request
from batch_revoke.errors import InputError, StorageError
from batch_revoke.identifiers import lookup_key, needs_lookup
from batch_revoke.journal import Journal, Pace
from batch_revoke.model import Counts, IdentifierType, LookupAnswer, Record, Row, RowOutcome
from batch_revoke.sender import Sender, traced
from batch_revoke.stop import Stop

log = logging.getLogger(__name__)


class Listener(Protocol):
    """The run, as the lookups tell it what they found: `now`, its calls and pace, kept with
    each answer; `lookup_refused`, a lookup that gave no customer (its rows will fail)."""

    def now(self) -> tuple[Counts, Pace]: ...
    def lookup_refused(self, answer: LookupAnswer) -> None: ...


class Lookups:
    """The run's customer lookups: their answers in the journal (one per key), and the keys
    this session could not get an answer for (looked up again only by a resume)."""

    def __init__(self, journal: Journal, default_region: str | None = None) -> None:
        self.journal = journal
        self.default_region = default_region
        self.unanswered: dict[str, str] = {}  # key -> why there is no answer
        self.made = 0  # lookups sent this session (each is one customer; retries aside)
        # Keys being looked up now. Answered keys are in the journal, not in memory, so
        # memory stays flat however many customers the file names.
        self._busy: set[str] = set()

    def key(self, identifier: IdentifierType, value: str) -> str:
        return lookup_key(identifier, value, self.default_region)

    def answers(self, rows: Iterable[Row]) -> dict[str, LookupAnswer | str]:
        """What is known of these rows' customers: recorded answers, or this session's reason
        for having none. A key missing was never asked."""
        keys = {self.key(row.identifier_type, row.customer_id) for row in rows}
        unanswered = {key: self.unanswered[key] for key in keys & self.unanswered.keys()}
        return unanswered | dict(self.journal.lookups(keys))

    async def look_up(
        self,
        sender: Sender,
        wanted: Iterable[tuple[IdentifierType, str]],
        run: Listener,
    ) -> None:
        """Look up each (kind, value) whose customer has no answer yet, each answer into the
        journal; a key the run stops before is asked again by --resume."""

        async def one(item: tuple[str, IdentifierType, str]) -> None:
            key, identifier, value = item
            self.made += 1
            try:
                answer = await _ask(sender, identifier, value)
                if isinstance(answer, str):
                    self.unanswered[key] = answer
                    log.info(
                        "customer lookup of %s %s: no answer: %s", identifier, value[:40], answer
                    )
                    return
                try:
                    self.journal.looked_up(key, answer, *run.now())
                except StorageError as exc:  # the journal is intact: --resume asks again
                    self.unanswered[key] = str(exc)
                    sender.stop.request(str(exc))
                    return
            finally:
                self._busy.discard(key)
            if not answer.customer_id:
                run.lookup_refused(answer)

        await sender.each(self._new(wanted, sender.stop), one)

    def _new(
        self, wanted: Iterable[tuple[IdentifierType, str]], stop: Stop
    ) -> Iterator[tuple[str, IdentifierType, str]]:
        """The (key, kind, value) not asked yet, in batches checked against the journal."""
        part: dict[str, tuple[IdentifierType, str]] = {}

        def fresh() -> Iterator[tuple[str, IdentifierType, str]]:
            # Taken together: a key busy now is answered (in the journal) or unanswered by
            # the time it would be yielded, and only this generator makes keys busy.
            skip = set(self.journal.lookups(part)) | (
                part.keys() & (self._busy | self.unanswered.keys())
            )
            for key, (identifier, value) in part.items():
                if key not in skip:
                    self._busy.add(key)
                    yield key, identifier, value
            part.clear()

        try:
            for identifier, value in wanted:
                part.setdefault(self.key(identifier, value), (identifier, value))
                if len(part) >= 500:
                    yield from fresh()
            yield from fresh()
        except (InputError, StorageError) as exc:  # the journal is intact: resumable
            stop.request(str(exc))


async def _ask(sender: Sender, identifier: IdentifierType, value: str) -> LookupAnswer | str:
    """The customer an identifier names, or why there is no answer."""
    request = lookup_request(identifier, value)
    reply = await sender.fetch(request, "customer lookup", lookup_failure_of)
    if isinstance(reply, str):
        return reply
    answer = lookup_answer(reply)
    found = (
        answer
        if isinstance(answer, str)
        else f"customer {answer.customer_id}"
        if answer.customer_id
        else f"{answer.code} {answer.message}"
    )
    log.debug(
        "customer lookup of %s %s: HTTP %s, %s%s",
        identifier,
        value[:40],
        reply.http_status,
        found,
        traced(reply.request_id),
        extra={"event": "lookup", "request_id": reply.request_id or None},
    )
    return answer


def to_look_up(
    chunks: Iterable[tuple[Sequence[Record], list[RowOutcome] | None]],
    validate: Callable[[Record], Row | RowOutcome],
    journal: Journal,
    stopped: Callable[[], bool],
) -> Iterator[tuple[IdentifierType, str]]:
    """The customers the input's rows still to be sent or read back name by an identifier:
    rows settled already (by an earlier session, or in the result file `verify` settles)
    need no lookup. Streamed: the file is read as the lookups go out."""
    for records, earlier in chunks:
        if stopped() or not records:
            return
        known = journal.outcomes_between(records[0].row, records[-1].row)
        if earlier is not None:
            known = {o.row: o for o in earlier} | known
        for record in records:
            outcome = known.get(record.row)
            if outcome is not None and outcome.final:
                continue
            verdict = validate(record)
            if isinstance(verdict, Row) and needs_lookup(verdict):
                yield verdict.identifier_type, verdict.customer_id
