from __future__ import annotations

from pathlib import Path

import pytest

from batch_revoke.model import Batch, IdentifierType, Mode, Row

HEADER = "badgeMetaId,customerId,issueId,earnedBadgeId,identifierType"


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write text (or bytes) to a CSV file in tmp_path and return its path."""

    def write(content: str | bytes, name: str = "input.csv") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return write


def issue_batch(*rows: tuple[str, str], badge: str = "B1", number: int = 1) -> Batch:
    """A revokeIssuals batch of (customerId, issueId) pairs, rows numbered from 1."""
    built = tuple(Row(i, badge, c, issue) for i, (c, issue) in enumerate(rows, start=1))
    return Batch(number, Mode.ISSUALS, badge, built)


def customers_batch(*customers: str, badge: str = "B1") -> Batch:
    built = tuple(Row(i, badge, c) for i, c in enumerate(customers, start=1))
    return Batch(1, Mode.CUSTOMERS, badge, built)


def earn_batch(
    customer: str = "566135941",
    earned: str = "E1",
    identifier: IdentifierType = IdentifierType.ID,
    badge: str = "B3",
) -> Batch:
    return Batch(1, Mode.EARN, badge, (Row(1, badge, customer, "", earned, identifier),))
