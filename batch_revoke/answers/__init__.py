"""What an answer, or its absence, means for each row: the one place that decides. `replies`:
an answer to one call (a revoke, a customer lookup) or its failure; `rows`: a row among the
others (covering rows, races, rows sent again blind) and every row as the run left it."""

from batch_revoke.answers.replies import (
    LOOKUP_NOT_FOUND,
    NOT_APPLIED_STATUSES,
    NOT_PRESENT_CODES,
    RetryableFailure,
    client_failed,
    exhausted,
    failure_of,
    interpret,
    lookup_answer,
    lookup_refused,
    lookup_unanswered,
    outcome,
    resolved_id,
    transport_failure,
)
from batch_revoke.answers.rows import (
    NOT_READ_BACK,
    as_the_run_left_them,
    covering_unknown,
    join_outcomes,
    not_present,
    not_read_back,
    raced,
    revoked_through,
    sent_blind,
    stopped_in_flight,
)

__all__ = [
    "LOOKUP_NOT_FOUND",
    "NOT_APPLIED_STATUSES",
    "NOT_PRESENT_CODES",
    "NOT_READ_BACK",
    "RetryableFailure",
    "as_the_run_left_them",
    "client_failed",
    "covering_unknown",
    "exhausted",
    "failure_of",
    "interpret",
    "join_outcomes",
    "lookup_answer",
    "lookup_refused",
    "lookup_unanswered",
    "not_present",
    "not_read_back",
    "outcome",
    "raced",
    "resolved_id",
    "revoked_through",
    "sent_blind",
    "stopped_in_flight",
    "transport_failure",
]
