"""Which rows a retry can still revoke: decided once, in codes.py, for the report and the
commands that send rows again."""

import pytest

from batch_revoke.codes import retryable
from batch_revoke.model import ErrorCode, Status


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.NOT_ATTEMPTED, ""),
        (Status.NOT_ATTEMPTED, ErrorCode.LOOKUP_FAILED),
        (Status.UNCONFIRMED, ErrorCode.TIMEOUT),
        (Status.FAILED, "http_429"),
        (Status.FAILED, "http_503"),
        (Status.FAILED, "http_500"),
        (Status.FAILED, "http_502"),
        (Status.FAILED, ErrorCode.TIMEOUT),
        (Status.FAILED, ErrorCode.CONNECTION_ERROR),
        (Status.FAILED, ErrorCode.CLIENT_ERROR),
    ],
)
def test_rows_never_sent_unknown_or_without_a_final_answer_can_be_retried(status, code):
    assert retryable(status, code)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.FAILED, "404"),
        (Status.FAILED, "814"),
        (Status.FAILED, "816"),
        (Status.FAILED, ErrorCode.BADGE_NOT_FOUND),
        (Status.FAILED, "http_400"),
        (Status.FAILED, "http_5000"),
        (Status.INVALID, ErrorCode.MISSING_VALUE),
        (Status.DUPLICATE, ErrorCode.DUPLICATE_ROW),
        (Status.REVOKED, ""),
    ],
)
def test_a_final_answer_a_wrong_row_or_a_duplicate_is_never_retried(status, code):
    assert not retryable(status, code)
