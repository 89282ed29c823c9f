"""The usual Indian mobile is read without phonenumbers, and any spelling read once is kept:
both must give exactly what phonenumbers gives, for every spelling and region."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batch_revoke import identifiers
from batch_revoke.identifiers import _USUAL_MOBILE, mobile_number
from batch_revoke.mobiles import read_mobile

REGIONS = st.sampled_from([None, "IN", "US", "GB", "AE", "SG"])


def by_phonenumbers(text: str, region: str | None) -> object:
    """The reading with neither the fast path nor the cache."""
    return read_mobile(text, region)


@settings(max_examples=600, deadline=None)
@given(st.from_regex(_USUAL_MOBILE, fullmatch=True), REGIONS)
@example("919900000013", None)
@example("+91 6000000000", "IN")
@example("0091-9999999999", "IN")
@example("+91 (0) 99000 00013", None)
@example("0091(0)6000000000", "IN")
def test_every_spelling_the_fast_path_takes_reads_as_phonenumbers_reads_it(text, region):
    assert mobile_number(text, region) == by_phonenumbers(text, region)


# Spellings near the usual one: other country codes, prefixes, separators, lengths and
# first digits, so the fast path's edges (what it must leave to phonenumbers) are crossed.
NEAR_USUAL = st.builds(
    lambda prefix, code, separator, first, rest: prefix + code + separator + first + rest,
    st.sampled_from(["", "+", "00", "0", "+0", " +", "(+", "0 0"]),
    st.sampled_from(["91", "9", "1", "44", "971", "65", "910", "19", ""]),
    st.sampled_from(["", " ", "-", "  ", ".", "/", " (0) ", "\t"]),
    st.sampled_from(list("0123456789")),
    st.text(alphabet="0123456789 -", min_size=6, max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(NEAR_USUAL, REGIONS)
def test_spellings_near_the_usual_one_read_as_phonenumbers_reads_them(text, region):
    assert mobile_number(text, region) == by_phonenumbers(text, region)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+ -()x", max_size=20), REGIONS)
def test_a_spelling_read_twice_reads_the_same_as_phonenumbers(text, region):
    first = mobile_number(text, region)
    assert mobile_number(text, region) == first == by_phonenumbers(text, region)


@pytest.mark.parametrize("region", [None, "IN"])
@pytest.mark.parametrize("text", ["919900000013", "+91 99000 00013", "0091-9900000013"])
def test_the_usual_indian_mobile_is_read_without_phonenumbers(monkeypatch, text, region):
    # With no region, or region IN, the usual spelling never waits on phonenumbers (~60 µs a
    # number, most of a dry run's time on a file of mobiles).
    def by_phonenumbers_instead(text: str, region: str | None) -> object:
        raise AssertionError(f"{text!r} ({region}) was read by phonenumbers")

    monkeypatch.setattr(identifiers, "_read_once", by_phonenumbers_instead)
    assert mobile_number(text, region) == "919900000013"
