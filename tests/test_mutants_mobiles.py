"""Mobile numbers as mobiles.read_mobile reads them, each spelling read afresh (neither the
fast path nor the cache of identifiers.mobile_number in between): the digits a row is looked
up and sent by, and the reason a row's message gives when a value is no mobile."""

from __future__ import annotations

import pytest

from batch_revoke.errors import ConfigError
from batch_revoke.mobiles import read_mobile, region_code
from batch_revoke.model import NotAMobile


@pytest.mark.parametrize(
    ("written", "region", "digits"),
    [
        pytest.param("00 91 99000 00013", None, "919900000013", id="00-then-country-code"),
        pytest.param("0091-9900000013", "IN", "919900000013", id="00-with-a-region"),
        pytest.param("919900000013", None, "919900000013", id="country-code-without-plus"),
        pytest.param("447911123456", None, "447911123456", id="uk-digits-no-region"),
        pytest.param("447911123456", "IN", "447911123456", id="uk-digits-region-in"),
        pytest.param("09900000013", "IN", "919900000013", id="national-with-trunk-zero"),
        # Under region IN these ten digits have a mobile's length, but no Indian mobile starts
        # with 4; with their country code they are a Danish mobile in use: that reading wins.
        pytest.param("4520123456", "IN", "4520123456", id="number-in-use-wins"),
        # Neither reading is a number in use; the one with a mobile's length is taken.
        pytest.param("5555555555", "IN", "915555555555", id="right-length-national"),
        pytest.param("11111111111", "IN", "11111111111", id="right-length-with-country-code"),
        pytest.param("+91 12345 67890", None, "911234567890", id="plus-right-length-only"),
    ],
)
def test_a_mobile_is_read_as_its_digits_with_the_country_code(written, region, digits):
    assert read_mobile(written, region) == digits


@pytest.mark.parametrize(
    ("written", "region", "reason"),
    [
        pytest.param(
            "++919900000013",
            None,
            "a + can only come first, once, before the country code",
            id="two-plus",
        ),
        pytest.param(
            "+91 9900X00013",
            None,
            "it holds 'X'; a mobile is digits, with spaces, dashes, dots, slashes or brackets "
            "between them and a + or 00 before the country code",
            id="capital-letter",
        ),
        pytest.param("( - )", None, "it holds no digits", id="no-digits"),
        # A + says the country code follows: a 0 after it is no national number, no region.
        pytest.param(
            "+0 99000 00013", None, "no country has the code it starts with", id="plus-zero"
        ),
        pytest.param("011 44", "US", "it is too short after its 00 or +", id="short-after-idd"),
        pytest.param("+44 1", None, "it is too short to be a phone number", id="too-short"),
        pytest.param("9" * 300, "IN", "it is too long to be a phone number", id="too-long"),
        pytest.param("+91", None, "it is not a phone number", id="country-code-only"),
        pytest.param(
            "+91 99000 0001", None, "it is too short for a mobile of +91 (IN)", id="short-in"
        ),
        # +882 belongs to no one country: its region is "001", not named.
        pytest.param("+882 1234", None, "it is too short for a mobile of +882", id="no-region"),
        pytest.param(
            "+800 1234 5678",
            None,
            "no mobile of +800 has 8 digits after the country code",
            id="no-mobile-length",
        ),
        pytest.param(
            "09900000013",
            None,
            "it is a national number (it starts with 0), and the country it belongs to is not "
            "known: pass --default-region (e.g. --default-region IN) or write it with its "
            "country code (+91 99000 00013)",
            id="national-without-region",
        ),
        pytest.param(
            "99000 0001",
            None,
            "no country has the code it starts with"
            "; if it is a national number, pass --default-region (e.g. --default-region IN) "
            "to read it as one",
            id="maybe-national",
        ),
        # Up to 17 digits may be a national number written without its region; more may not.
        pytest.param(
            "12345678901234567",
            None,
            "it is too long for a mobile of +1 (US)"
            "; if it is a national number, pass --default-region (e.g. --default-region IN) "
            "to read it as one",
            id="17-digits",
        ),
        pytest.param(
            "123456789012345678", None, "it is too long for a mobile of +1 (US)", id="18-digits"
        ),
    ],
)
def test_what_is_no_mobile_says_why_in_words_a_user_reads(written, region, reason):
    assert read_mobile(written, region) == NotAMobile(reason)


def test_an_unknown_region_is_refused_with_what_to_pass_instead():
    with pytest.raises(ConfigError) as refused:
        region_code("IND")
    assert str(refused.value) == (
        "--default-region 'IND' is not a region code; "
        "pass a two-letter ISO 3166 code such as IN, GB or US"
    )
