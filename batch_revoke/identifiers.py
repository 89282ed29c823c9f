"""Customers as files name them: one key per customer however it is spelled, and which rows
are looked up. The usual Indian mobile is read here at once; any other by mobiles.py."""

from __future__ import annotations

import functools
import re

from batch_revoke.model import IdentifierType, Mode, NotAMobile, Row, id_key

# The usual spelling in the field, an Indian mobile after its country code (919900000013,
# +91 99000 00013, 0091-9900000013, +91 (0) 99000 00013), is read at once: phonenumbers takes
# ~60 µs a number, most of a dry run's time on a file of mobiles. Tests compare the two.
# saves 31% of the 1M dry run (5.15 s -> 3.57 s CPU; bench, 2026-12)
_USUAL_MOBILE = re.compile(
    r"(?:(?:\+|00)91[ -]?(?:\(0\)[ -]?)?|91[ -]?)([6-9][0-9]{4})[ -]?([0-9]{5})"
)


def mobile_number(text: str, default_region: str | None = None) -> str | NotAMobile:
    """A mobile in the form the API matches, as `mobiles.read_mobile` reads it."""
    if default_region in (None, "IN") and (usual := _USUAL_MOBILE.fullmatch(text)):
        return "91" + usual[1] + usual[2]
    return _read_once(text, default_region)


def card_number(text: str) -> str:
    """A card number without the spaces people group its digits with. Spaces only: the vendor
    documents no spelling of card numbers, so a dash or a dot is left for the API to judge."""
    return text.replace(" ", "")


@functools.lru_cache(maxsize=16_384)  # a customer named on many rows is read once
def _read_once(text: str, default_region: str | None) -> str | NotAMobile:
    # Imported here, by the first spelling the fast path cannot read: a file of customer ids,
    # and the command's start-up, do without phonenumbers.
    from batch_revoke.mobiles import read_mobile

    return read_mobile(text, default_region)


def identifier_key(
    identifier: IdentifierType, value: str, default_region: str | None = None
) -> str:
    """What makes two spellings of a customer the same customer, for lookups and duplicates.
    A mobile that is no number is compared as written: its row is refused before any lookup."""
    text = value.strip()
    if identifier is IdentifierType.MOBILE:
        number = mobile_number(text, default_region)
        return text if isinstance(number, NotAMobile) else number
    if identifier is IdentifierType.EMAIL:
        # lower(), not casefold(): casefold makes STRASSE@ and straße@ one customer, which
        # the API may not; two spellings kept apart cost a lookup, two customers merged
        # would revoke one as the other.
        return text.lower()
    if identifier is IdentifierType.ID:
        return id_key(text)
    if identifier is IdentifierType.CARD_NUMBER:
        return card_number(text)
    return text


def needs_lookup(row: Row) -> bool:
    """revokeIssue takes the numeric id: a row naming its customer otherwise is looked up.
    revokeEarn takes the identifier itself (a header says which kind)."""
    return (
        row.mode is not Mode.EARN
        and row.identifier_type is not IdentifierType.ID
        and not row.resolved
    )


def lookup_key(identifier: IdentifierType, value: str, default_region: str | None) -> str:
    """One key per customer, of any identifier type: one lookup per customer."""
    return f"{identifier.value}:{identifier_key(identifier, value, default_region)}"
