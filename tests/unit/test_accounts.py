"""Account validation: mobile numbers and carriers, fuel cards, membership accounts."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topup.domain.accounts import (
    AccountCheck,
    BusinessType,
    Carrier,
    FuelIssuer,
    InvalidAccount,
    detect_carrier,
    validate_account,
)

MOBILE_TYPES = [BusinessType.MOBILE_AIRTIME, BusinessType.MOBILE_DATA]

# Numbers checked against phonenumbers 9.0.43 (carrier names) and the fallback prefix table.
CARRIER_NUMBERS = [
    ("13800138000", "cmcc"),
    ("13912345678", "cmcc"),
    ("14712345678", "cmcc"),
    ("15012345678", "cmcc"),
    ("17212345678", "cmcc"),
    ("18812345678", "cmcc"),
    ("19512345678", "cmcc"),
    ("19812345678", "cmcc"),
    ("17031234567", "cmcc"),
    ("13012345678", "cucc"),
    ("15512345678", "cucc"),
    ("16612345678", "cucc"),
    ("17512345678", "cucc"),
    ("17612345678", "cucc"),
    ("18612345678", "cucc"),
    ("19612345678", "cucc"),
    ("17041234567", "cucc"),
    ("13312345678", "ctcc"),
    ("15312345678", "ctcc"),
    ("17712345678", "ctcc"),
    ("18012345678", "ctcc"),
    ("18912345678", "ctcc"),
    ("19012345678", "ctcc"),
    ("19312345678", "ctcc"),
    ("19912345678", "ctcc"),
    ("17001234567", "ctcc"),
    ("19212345678", "cbn"),
    ("19298765432", "cbn"),
]


@pytest.mark.parametrize("business_type", MOBILE_TYPES)
@pytest.mark.parametrize(("number", "expected"), CARRIER_NUMBERS)
def test_mobile_numbers_detect_their_carrier(business_type: str, number: str, expected: str) -> None:
    assert validate_account(business_type, number) == AccountCheck(number, expected, "mobile")


# phonenumbers names no carrier for these MVNO blocks; the prefix table fills in.
@pytest.mark.parametrize(
    ("number", "expected"),
    [("16512345678", "cmcc"), ("16712345678", "cucc"), ("16212345678", "ctcc")],
)
def test_carrier_falls_back_to_the_prefix_table(number: str, expected: str) -> None:
    check = validate_account("mobile_airtime", number)
    assert check.brand == expected
    assert detect_carrier(number) == Carrier(expected)


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        "+8613800138000",
        "+86 138 0013 8000",
        "86 138 0013 8000",
        "8613800138000",
        "008613800138000",
        "138-0013-8000",
        "  13800138000\t",
        "+86-138-0013-8000",
    ],
)
def test_mobile_number_formats_normalise_to_eleven_digits(text: str) -> None:
    assert validate_account("mobile_airtime", text) == AccountCheck("13800138000", "cmcc", "mobile")


@pytest.mark.parametrize(
    "text",
    [
        "12345",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "10012345678",  # no such mobile block
        "12012345678",
        "14012345678",
        "01062345678",  # Beijing landline
        "010-6234-5678",
        "+86 10 6234 5678",
        "021 6234 5678",  # Shanghai landline
        "+85291234567",  # Hong Kong mobile
        "+1 650 253 0000",
        "+44 7911 123456",
        "138ABCDEFGH",  # phonenumbers would read letters as a vanity number
        "13800138000 ext 5",
        "(138)00138000",
        "138.0013.8000",
        "+",
        "abc",
        "１３８００１３８０００",  # full-width digits
    ],
)
@pytest.mark.parametrize("business_type", MOBILE_TYPES)
def test_invalid_mobile_numbers_are_rejected(business_type: str, text: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account(business_type, text)
    assert err.value.field == "account"
    assert err.value.reason.startswith("account: ")
    assert "mobile number" in err.value.reason


def test_reason_names_the_field_and_the_number() -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account("mobile_airtime", "12345")
    assert err.value.reason == "account: 12345 is not a valid mainland China mobile number"
    assert str(err.value) == err.value.reason
    assert isinstance(err.value, ValueError)


def test_number_without_a_known_carrier_is_rejected() -> None:
    # 1349 is the satellite block: valid to phonenumbers, but no carrier tops it up.
    with pytest.raises(InvalidAccount, match="carrier of 13490001234 cannot be determined"):
        validate_account("mobile_airtime", "13490001234")


@pytest.mark.parametrize("business_type", MOBILE_TYPES)
def test_product_for_another_carrier_is_rejected_naming_both(business_type: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account(business_type, "13800138000", brand="cucc")
    assert "cmcc" in err.value.reason
    assert "cucc" in err.value.reason
    assert "China Mobile" in err.value.reason


@pytest.mark.parametrize("brand", [None, "auto", "", "cmcc", "CMCC", " cmcc "])
def test_matching_or_open_brand_is_accepted(brand: str | None) -> None:
    assert validate_account("mobile_data", "13800138000", brand=brand).brand == "cmcc"


def test_unknown_brand_for_a_mobile_product_is_a_mismatch() -> None:
    with pytest.raises(InvalidAccount, match="for iqiyi"):
        validate_account("mobile_airtime", "13800138000", brand="iqiyi")


# --- fuel cards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "issuer"),
    [
        ("1000113200001234567", "sinopec"),
        ("1000114400009876543", "sinopec"),
        ("1000 1132 0000 1234 567", "sinopec"),
        ("9030000012345678", "petrochina"),
        ("9011-0000-1234-5678", "petrochina"),
        ("9999999999999999", "petrochina"),
    ],
)
def test_fuel_cards_detect_their_issuer(card: str, issuer: str) -> None:
    check = validate_account("fuel_card", card)
    assert check == AccountCheck(card.replace(" ", "").replace("-", ""), issuer, "fuel_card")
    assert validate_account("fuel_card", card, brand=issuer).brand == issuer


@pytest.mark.parametrize(
    "card",
    [
        "100011320000123456",  # Sinopec, 18 digits
        "10001132000012345678",  # Sinopec, 20 digits
        "1000123200001234567",  # 19 digits, wrong prefix
        "903000001234567",  # PetroChina, 15 digits
        "90300000123456789",  # PetroChina, 17 digits
        "8030000012345678",  # 16 digits, not starting 9
        "100011320000123456X",
        "13800138000",
        "",
        "   ",
    ],
)
def test_malformed_fuel_cards_are_rejected(card: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account("fuel_card", card)
    assert err.value.reason.startswith("account: ")


@pytest.mark.parametrize(
    ("card", "brand", "detected"),
    [("1000113200001234567", "petrochina", "sinopec"), ("9030000012345678", "sinopec", "petrochina")],
)
def test_fuel_card_of_the_other_issuer_is_rejected(card: str, brand: str, detected: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account("fuel_card", card, brand=brand)
    assert brand in err.value.reason
    assert detected in err.value.reason


def test_fuel_issuer_values() -> None:
    assert [i.value for i in FuelIssuer] == ["sinopec", "petrochina"]


# --- memberships --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "account", "kind"),
    [
        ("13800138000", "13800138000", "mobile"),
        ("+86 186 1234 5678", "18612345678", "mobile"),
        ("10001", "10001", "qq"),
        ("123456789", "123456789", "qq"),
        ("12345678901", "12345678901", "qq"),  # 11 digits but no mobile block: a QQ number
        ("13490001234", "13490001234", "qq"),  # valid number, no carrier: still a fine QQ number
        ("user@example.com", "user@example.com", "email"),
        ("First.Last+tag@Mail.Example.COM", "First.Last+tag@mail.example.com", "email"),
        ("x_y-z@sub-domain.example.cn", "x_y-z@sub-domain.example.cn", "email"),
        ("  12345@qq.com ", "12345@qq.com", "email"),
    ],
)
def test_membership_accounts(text: str, account: str, kind: str) -> None:
    assert validate_account("membership", text, brand="iqiyi") == AccountCheck(account, "iqiyi", kind)


@pytest.mark.parametrize("brand", [None, "auto"])
def test_membership_without_brand_has_none(brand: str | None) -> None:
    assert validate_account("membership", "10001", brand=brand).brand is None


def test_membership_keeps_the_products_brand() -> None:
    assert validate_account("membership", "10001", brand="tencent").brand == "tencent"


@pytest.mark.parametrize(
    "text",
    [
        "1234",  # QQ too short
        "012345",  # QQ starting with 0
        "123456789012",  # 12 digits
        "user@",
        "@example.com",
        "user@example",
        "user@@example.com",
        "user..name@example.com",
        ".user@example.com",
        "user@-example.com",
        "user@example..com",
        "user name@example.com",
        "用户@example.com",
        "a" * 65 + "@example.com",  # local part over 64
        "x@" + "a" * 250 + ".com",  # over 254 in all
        "someone",
        "a" * 65,
        "+44 7911 123456",
    ],
)
def test_invalid_membership_accounts(text: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account("membership", text, brand="iqiyi")
    assert err.value.field == "account"
    assert err.value.reason.startswith("account: ")


def test_long_email_within_limit_is_accepted() -> None:
    address = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com"
    assert len(address) <= 254
    assert validate_account("membership", address).kind == "email"


# --- common rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("business_type", list(BusinessType))
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("138\x000138000", "control characters"),
        ("13800\u200b138000", "control characters"),
        ("1380013\n8000", "control characters"),
        ("1" * 300, "at most"),
    ],
)
def test_empty_long_and_control_characters_are_rejected(business_type: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidAccount, match=reason):
        validate_account(business_type, text)


@pytest.mark.parametrize("business_type", [BusinessType.MOBILE_AIRTIME, BusinessType.FUEL_CARD])
def test_over_64_characters_is_too_long_outside_memberships(business_type: str) -> None:
    with pytest.raises(InvalidAccount, match="at most 64"):
        validate_account(business_type, "1" * 65)


@pytest.mark.parametrize("business_type", ["", "airtime", "MOBILE_AIRTIME", "fuel"])
def test_unknown_business_type_is_rejected(business_type: str) -> None:
    with pytest.raises(InvalidAccount) as err:
        validate_account(business_type, "13800138000")
    assert err.value.field == "business_type"
    assert "not a known business type" in err.value.reason
    assert "mobile_airtime" in err.value.reason


def test_enum_values() -> None:
    assert [b.value for b in BusinessType] == ["mobile_airtime", "mobile_data", "fuel_card", "membership"]
    assert [c.value for c in Carrier] == ["cmcc", "cucc", "ctcc", "cbn"]
    assert BusinessType("fuel_card") == "fuel_card"


def test_check_is_frozen() -> None:
    check = validate_account("mobile_airtime", "13800138000")
    with pytest.raises(AttributeError):
        check.account = "x"  # type: ignore[misc]


BRANDS = st.one_of(
    st.none(),
    st.sampled_from(["auto", "cmcc", "cucc", "ctcc", "cbn", "sinopec", "petrochina", "iqiyi"]),
    st.text(max_size=10),
)
ACCOUNTS = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"\+?(86)?1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[0-9 +\-]{0,25}", fullmatch=True),
    st.emails(),
)


@settings(max_examples=300, deadline=None)
@given(business_type=st.sampled_from(list(BusinessType)), account=ACCOUNTS, brand=BRANDS)
def test_only_invalid_account_is_ever_raised(business_type: str, account: str, brand: str | None) -> None:
    try:
        check = validate_account(business_type, account, brand)
    except InvalidAccount as err:
        assert err.reason
        return
    assert check.account
    assert check.kind in ("mobile", "fuel_card", "qq", "email")
    # A normalised account validates again to itself.
    assert validate_account(business_type, check.account, brand) == check


@settings(max_examples=100, deadline=None)
@given(business_type=st.text(max_size=20), account=st.text(max_size=40))
def test_arbitrary_business_types_raise_only_invalid_account(business_type: str, account: str) -> None:
    with contextlib.suppress(InvalidAccount):
        validate_account(business_type, account)
