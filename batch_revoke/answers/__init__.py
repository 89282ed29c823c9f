"""What an answer, or its absence, means for each row: the one place that decides. `replies`:
an answer to one call (a revoke, a customer lookup) or its failure; `readbacks`: a read-back of
a row whose answer was lost; `rows`: a row among the others (covering rows, races) and every
row as the run left it."""

from batch_revoke.answers.readbacks import InDoubt, read_back_verdict, unconfirmed
from batch_revoke.answers.replies import (
    RetryableFailure,
    client_failed,
    exhausted,
    failure_of,
    interpret,
    lookup_answer,
    lookup_failure_of,
    lookup_refused,
    lookup_unanswered,
)
from batch_revoke.answers.rows import (
    NOT_READ_BACK,
    as_the_run_left_them,
    covering_unknown,
    join_outcomes,
    not_read_back,
    raced,
    revoked_through,
    same_customer,
    stopped_in_flight,
)

__all__ = [
    "NOT_READ_BACK",
    "InDoubt",
    "RetryableFailure",
    "as_the_run_left_them",
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
    "not_read_back",
    "raced",
    "read_back_verdict",
    "revoked_through",
    "same_customer",
    "stopped_in_flight",
    "unconfirmed",
]
