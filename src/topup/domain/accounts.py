"""Account validation: mainland mobile numbers and their carrier, fuel cards, membership accounts.

Pure: no I/O. `validate_account` either returns a normalised `AccountCheck` or raises `InvalidAccount`,
whatever text it is given.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from phonenumbers import PhoneNumberType, carrier

from topup.domain.regions import region_of


class BusinessType(StrEnum):
    MOBILE_AIRTIME = "mobile_airtime"
    """Prepaid call credit for a mainland mobile number."""
    MOBILE_DATA = "mobile_data"
    """A data pack for a mainland mobile number (products are per carrier)."""
    FUEL_CARD = "fuel_card"
    """Credit on a Sinopec or PetroChina fuel card."""
    MEMBERSHIP = "membership"
    """A video/music membership credited to a phone, QQ or e-mail account."""


class Carrier(StrEnum):
    CMCC = "cmcc"
    """China Mobile."""
    CUCC = "cucc"
    """China Unicom."""
    CTCC = "ctcc"
    """China Telecom."""
    CBN = "cbn"
    """China Broadnet (China Broadcasting Network)."""


class FuelIssuer(StrEnum):
    SINOPEC = "sinopec"
    """China Petroleum & Chemical (Sinopec): 19-digit cards starting 100011."""
    PETROCHINA = "petrochina"
    """PetroChina: 16-digit cards starting 9."""


class AccountKind(StrEnum):
    MOBILE = "mobile"
    """A mainland China mobile number, normalised to its 11 national digits."""
    FUEL_CARD = "fuel_card"
    """A fuel card number, digits only."""
    QQ = "qq"
    """A QQ number."""
    EMAIL = "email"
    """An e-mail address, domain lower-cased."""


@dataclass(frozen=True)
class AccountCheck:
    account: str
    """The normalised account, as it should be stored and sent to suppliers."""
    brand: str | None
    """The carrier (mobile), the issuer (fuel card), the membership brand, or None."""
    kind: str
    """One of `AccountKind`."""
    # Derived from `account` (like the carrier, but not part of what identifies the check's result).
    region: str | None = field(default=None, compare=False)
    """A mobile number's home province (ISO 3166-2:CN, `CN-GD`), when the geocoding data knows it."""


class InvalidAccount(ValueError):
    """The account does not fit the product's business type (or its brand)."""

    def __init__(self, reason: str, field: str = "account") -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


MAX_ACCOUNT_LEN = 64
MAX_EMAIL_LEN = 254

CARRIER_NAMES: dict[Carrier, str] = {
    Carrier.CMCC: "China Mobile",
    Carrier.CUCC: "China Unicom",
    Carrier.CTCC: "China Telecom",
    Carrier.CBN: "China Broadnet",
}
ISSUER_NAMES: dict[FuelIssuer, str] = {FuelIssuer.SINOPEC: "Sinopec", FuelIssuer.PETROCHINA: "PetroChina"}

# phonenumbers' English carrier names (as of 9.0) -> our codes.
_CARRIER_BY_NAME: dict[str, Carrier] = {
    "China Mobile": Carrier.CMCC,
    "China Unicom": Carrier.CUCC,
    "China Telecom": Carrier.CTCC,
    "China Broadnet": Carrier.CBN,
    "China Broadcasting": Carrier.CBN,
    "China Broadcasting Network": Carrier.CBN,
}


def _prefixes(carrier_code: Carrier, *prefixes: str) -> dict[str, Carrier]:
    return dict.fromkeys(prefixes, carrier_code)


# Used only when phonenumbers names no carrier (it leaves e.g. the 162/165/167 MVNO blocks blank).
# Longest prefix wins; 1349 is the satellite block, not China Mobile, so it has no carrier.
_CARRIER_BY_PREFIX: dict[str, Carrier | None] = {
    **_prefixes(
        Carrier.CMCC,
        *("134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159"),
        *(
            "165",
            "172",
            "178",
            "182",
            "183",
            "184",
            "187",
            "188",
            "195",
            "197",
            "198",
            "1703",
            "1705",
            "1706",
        ),
    ),
    **_prefixes(
        Carrier.CUCC,
        *("130", "131", "132", "145", "155", "156", "166", "167", "171", "175", "176", "185", "186", "196"),
        *("1704", "1707", "1708", "1709"),
    ),
    **_prefixes(
        Carrier.CTCC,
        *("133", "149", "153", "162", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199"),
        *("1700", "1701", "1702"),
    ),
    **_prefixes(Carrier.CBN, "192", "1610"),
    "1349": None,
}

_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Digits with an optional international prefix; letters, extensions and other punctuation are refused
# (phonenumbers itself would read "138ABCDEFGH" as a vanity number).
_PHONE_TEXT = re.compile(r"(?:\+|00)?[0-9]{5,20}", re.ASCII)
_SEPARATORS = re.compile(r"[ \t\u3000-]")
_QQ = re.compile(r"[1-9][0-9]{4,10}", re.ASCII)
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})",
    re.ASCII,
)
_SINOPEC = re.compile(r"100011[0-9]{13}", re.ASCII)
_PETROCHINA = re.compile(r"9[0-9]{15}", re.ASCII)


def validate_account(business_type: str, account: str, brand: str | None = None) -> AccountCheck:
    """Check `account` for a product of `business_type` (and `brand`, when the product has one).

    `brand` None or "auto" means any brand; for mobile numbers and fuel cards the brand of the result is
    the one detected from the account.
    """
    try:
        btype = BusinessType(business_type)
    except ValueError:
        raise InvalidAccount(
            f"business_type: {_shown(str(business_type))} is not a known business type "
            f"(expected one of {', '.join(t.value for t in BusinessType)})",
            field="business_type",
        ) from None
    want = _wanted_brand(brand)
    text = _clean(account, MAX_EMAIL_LEN if btype is BusinessType.MEMBERSHIP else MAX_ACCOUNT_LEN)
    if btype in (BusinessType.MOBILE_AIRTIME, BusinessType.MOBILE_DATA):
        number, detected, parsed = _mobile(text)
        if want is not None and want != detected:
            raise InvalidAccount(
                f"account: {number} is a {CARRIER_NAMES[detected]} ({detected}) number "
                f"but the product is for {_shown(want)}"
            )
        # The number parsed once serves the carrier and the region too (a 10,000-row batch parses
        # 10,000 numbers, not 30,000).
        return AccountCheck(number, detected.value, AccountKind.MOBILE.value, region_of(number, parsed))
    if btype is BusinessType.FUEL_CARD:
        card, issuer = _fuel_card(text)
        if want is not None and want != issuer:
            raise InvalidAccount(
                f"account: {card} is a {ISSUER_NAMES[issuer]} ({issuer}) fuel card "
                f"but the product is for {_shown(want)}"
            )
        return AccountCheck(card, issuer.value, AccountKind.FUEL_CARD.value)
    account_out, kind = _member_account(text)
    region = region_of(account_out) if kind is AccountKind.MOBILE else None
    return AccountCheck(account_out, want, kind.value, region)


def detect_carrier(number: str, parsed: phonenumbers.PhoneNumber | None = None) -> Carrier | None:
    """The carrier of an 11-digit national mobile number, from phonenumbers or else the prefix table
    (`parsed`: the number already parsed and found a mobile number, if the caller has it)."""
    name = None
    if parsed is not None:  # the caller found it a mobile number already
        name = carrier.name_for_valid_number(parsed, "en")
    else:
        with contextlib.suppress(phonenumbers.NumberParseException):
            name = carrier.name_for_number(phonenumbers.parse(number, "CN"), "en")
    if name is not None:
        found = _CARRIER_BY_NAME.get(name)
        if found is not None:
            return found
    for length in (4, 3):
        if number[:length] in _CARRIER_BY_PREFIX:
            return _CARRIER_BY_PREFIX[number[:length]]
    return None


def _wanted_brand(brand: str | None) -> str | None:
    if brand is None:
        return None
    want = brand.strip().lower()
    return None if want in ("", "auto") else want


def _clean(account: str, max_len: int) -> str:
    if not isinstance(account, str):
        raise InvalidAccount("account: must be a string")
    text = account.strip()
    if not text:
        raise InvalidAccount("account: must not be empty")
    if len(text) > max_len:
        raise _too_long(text, max_len)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text):
        raise InvalidAccount("account: contains control characters")
    return text


def _too_long(text: str, limit: int) -> InvalidAccount:
    return InvalidAccount(f"account: is {len(text)} characters long; at most {limit} are allowed")


def _shown(text: str, limit: int = 40) -> str:
    """Echo user input in a reason without letting it run on."""
    return text if len(text) <= limit else text[:limit] + "..."


def _mobile(text: str) -> tuple[str, Carrier, phonenumbers.PhoneNumber]:
    not_mobile = InvalidAccount(f"account: {_shown(text)} is not a valid mainland China mobile number")
    compact = _SEPARATORS.sub("", text)
    if not _PHONE_TEXT.fullmatch(compact):
        raise not_mobile
    try:
        parsed = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException:
        raise not_mobile from None
    if parsed.country_code != 86 or parsed.extension:
        raise not_mobile
    national = str(parsed.national_number)
    # A mobile number type is a valid number (+86 is one region): one type check, not is_valid too.
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES or len(national) != 11:
        raise not_mobile
    detected = detect_carrier(national, parsed)
    if detected is None:
        raise InvalidAccount(f"account: the carrier of {national} cannot be determined")
    return national, detected, parsed


def _fuel_card(text: str) -> tuple[str, FuelIssuer]:
    card = _SEPARATORS.sub("", text)
    if _SINOPEC.fullmatch(card):
        return card, FuelIssuer.SINOPEC
    if _PETROCHINA.fullmatch(card):
        return card, FuelIssuer.PETROCHINA
    raise InvalidAccount(
        f"account: {_shown(card)} is not a fuel card number "
        "(Sinopec: 19 digits starting 100011; PetroChina: 16 digits starting 9)"
    )


def _member_account(text: str) -> tuple[str, AccountKind]:
    if "@" in text:
        match = _EMAIL.fullmatch(text)
        if match is None or len(match["local"]) > 64:
            raise InvalidAccount(f"account: {_shown(text)} is not a valid e-mail address")
        return f"{match['local']}@{match['domain'].lower()}", AccountKind.EMAIL
    if len(text) > MAX_ACCOUNT_LEN:
        raise InvalidAccount(
            f"account: is {len(text)} characters long; at most {MAX_ACCOUNT_LEN} are allowed"
        )
    try:
        number, _, _ = _mobile(text)
    except InvalidAccount:
        pass
    else:
        return number, AccountKind.MOBILE
    if _QQ.fullmatch(text):
        return text, AccountKind.QQ
    raise InvalidAccount(
        f"account: {_shown(text)} is not a mainland China mobile number, a QQ number or an e-mail address"
    )
