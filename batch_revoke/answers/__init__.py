"""What an answer, or its absence, means for each row: the one place that decides. `replies`:
an answer to one call (a revoke, a customer lookup) or its failure; `readbacks`: a read-back of
a row whose answer was lost; `rows`: a row among the others (covering rows, races) and every
row as the run left it."""

from batch_revoke.answers.readbacks import Unsettled, settle, unconfirmed
from batch_revoke.answers.replies import (
    LOOKUP_NOT_FOUND,
    NOT_APPLIED_STATUSES,
    NOT_PRESENT_CODES,
    RetryableFailure,
    badge_missing,
    badge_not_found,
    client_failed,
    exhausted,
    failure_of,
    interpret,
    lookup_answer,
    lookup_failure_of,
    lookup_refused,
    lookup_unanswered,
    outcome,
    resolved_id,
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
    same_customer,
    stopped_in_flight,
)

__all__ = [
    "LOOKUP_NOT_FOUND",
    "NOT_APPLIED_STATUSES",
    "NOT_PRESENT_CODES",
    "NOT_READ_BACK",
    "RetryableFailure",
    "Unsettled",
    "as_the_run_left_them",
    "badge_missing",
    "badge_not_found",
    "client_failed",
    "covering_unknown",
    "exhausted",
    "failure_of",
    "interpret",
    "join_outcomes",
    "lookup_answer",
    "lookup_failure_of",
    "lookup_refused",
    "lookup_unanswered",
    "not_present",
    "not_read_back",
    "outcome",
    "raced",
    "resolved_id",
    "revoked_through",
    "same_customer",
    "settle",
    "stopped_in_flight",
    "unconfirmed",
]
