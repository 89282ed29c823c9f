"""Mobile numbers as people write them, read with phonenumbers into the form the API matches,
and --default-region. Imported only by a number identifiers.mobile_number cannot read, or a
region: a file that names its customers by id never imports phonenumbers."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, ValidationResult

from batch_revoke.errors import ConfigError
from batch_revoke.model import NotAMobile

# What people write around a phone number's digits: spaces, dashes, dots, slashes, brackets
# (the "(0)" of "+91 (0) 99000 00013" too), and a + in front. Anything else, letters above all,
# is refused here: phonenumbers would read letters as keypad digits (1-800-FLOWERS) and drop
# an extension, and neither belongs in a loyalty mobile.
_MOBILE_SPELLING = re.compile(r"\+?[\d\s().\-/]+")
_INTERNATIONAL_00 = re.compile(r"^[\s(]*0[\s().\-/]*0")  # 00 then the country code
_OPTION = "--default-region"
_MAX_DIGITS = 17  # E.164 allows 15; a few more for a 00 and a (0) written in front


def region_code(text: str) -> str:
    """A --default-region value as phonenumbers knows it: an ISO 3166 alpha-2 code, any case."""
    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"{_OPTION} {text!r} is not a region code",
            "pass a two-letter ISO 3166 code such as IN, GB or US",
        )
    return code


def read_mobile(text: str, default_region: str | None = None) -> str | NotAMobile:
    """A mobile as people write it, in the form the API matches: E.164 without its +.

    Digits with no + or 00 are read as a national number of `default_region` first, then as
    digits that start with their country code, preferring the reading that is a number in
    use. Without a default region, a number that starts with its national 0 cannot be read."""
    written = " ".join(text.split())  # tabs and no-break spaces trip phonenumbers up
    digits = phonenumbers.normalize_digits_only(written)
    if not _MOBILE_SPELLING.fullmatch(written) or not digits:
        odd = next((c for c in written if not (c.isdigit() or c in " ().-/+" or c.isspace())), "")
        if odd:
            return NotAMobile(
                f"it holds {odd!r}; a mobile is digits, with spaces, dashes, dots, slashes or "
                "brackets between them and a + or 00 before the country code"
            )
        if not digits:
            return NotAMobile("it holds no digits")
        return NotAMobile("a + can only come first, once, before the country code")
    readings: list[tuple[str, str | None]]  # (text, region) to parse, in order of preference
    if written.startswith("+"):
        readings = [(written, None)]
    elif _INTERNATIONAL_00.match(written):
        readings = [("+" + _INTERNATIONAL_00.sub("", written, count=1), None)]
    elif digits.startswith("0") and default_region is None:
        return NotAMobile(
            "it is a national number (it starts with 0), and the country it belongs to is not "
            f"known: pass {_OPTION} (e.g. {_OPTION} IN) or write it with its country code "
            "(+91 99000 00013)"
        )
    elif digits.startswith("0"):
        readings = [(written, default_region)]
    elif default_region is None:
        readings = [("+" + written, None)]
    else:
        readings = [(written, default_region), ("+" + written, None)]
    first = _parse(*readings[0])  # its reason is the one given when no reading is a mobile
    fallback = None
    for index, (spelling, region) in enumerate(readings):
        number = first if index == 0 else _parse(spelling, region)
        if isinstance(number, NotAMobile) or _possible(number) != ValidationResult.IS_POSSIBLE:
            continue
        # A reading that is a number in use wins over one that only has the right length.
        if len(readings) == 1 or phonenumbers.is_valid_number(number):
            return _e164_digits(number)
        fallback = fallback or number
    if fallback is not None:
        return _e164_digits(fallback)
    reason = first.reason if isinstance(first, NotAMobile) else _impossible(first)
    if (
        default_region is None
        and not (written.startswith("+") or digits.startswith("00"))
        and len(digits) <= _MAX_DIGITS
    ):
        reason += (
            f"; if it is a national number, pass {_OPTION} (e.g. {_OPTION} IN) to read it as one"
        )
    return NotAMobile(reason)


def _e164_digits(number: PhoneNumber) -> str:
    return f"{number.country_code}{phonenumbers.national_significant_number(number)}"


def _parse(text: str, region: str | None) -> PhoneNumber | NotAMobile:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reasons = {
            NumberParseException.INVALID_COUNTRY_CODE: "no country has the code it starts with",
            NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after its 00 or +",
            NumberParseException.TOO_SHORT_NSN: "it is too short to be a phone number",
            NumberParseException.TOO_LONG: "it is too long to be a phone number",
        }
        return NotAMobile(reasons.get(exc.error_type, "it is not a phone number"))


def _possible(number: PhoneNumber) -> int:
    """Whether the number has a length its country gives mobiles: a digit dropped from an
    Indian mobile makes a possible landline length, and no possible mobile."""
    return phonenumbers.is_possible_number_for_type_with_reason(
        number, phonenumbers.PhoneNumberType.MOBILE
    )


def _impossible(number: PhoneNumber) -> str:
    """Why a parsed number is not a possible number of its country."""
    code = number.country_code or 0  # always set by parse
    region = phonenumbers.region_code_for_country_code(code)
    where = f"+{code}" + (f" ({region})" if region.isalpha() else "")
    length = len(str(number.national_number))
    return {
        ValidationResult.TOO_SHORT: f"it is too short for a mobile of {where}",
        ValidationResult.TOO_LONG: f"it is too long for a mobile of {where}",
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
            f"it is too short for a mobile of {where} (a local number without its area code?)"
        ),
        ValidationResult.INVALID_COUNTRY_CODE: f"no country has the code {where}",
    }.get(_possible(number), f"no mobile of {where} has {length} digits after the country code")
