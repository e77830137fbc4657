"""Reason codes of the contract (section 2) and the sentence shown for each."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a token is invalid. The value is the contract's code."""

    # technical
    BAD_PREFIX = "bad_prefix"
    BAD_BASE45 = "bad_base45"
    BAD_COMPRESSION = "bad_compression"
    BAD_COSE = "bad_cose"
    BAD_CWT = "bad_cwt"
    BAD_PAYLOAD = "bad_payload"
    TOO_LARGE = "too_large"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    KEY_USAGE = "key_usage"
    KEY_EXPIRED = "key_expired"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason code, not a secret
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"  # noqa: S105
    REVOKED = "revoked"
    NOT_IN_REGISTRY = "not_in_registry"
    # register links (CONTRACT section 1b)
    BAD_LINK = "bad_link"
    NOT_FOUND = "not_found"
    # acceptance rules
    VACCINE_NOT_ACCEPTED = "vaccine_not_accepted"
    VACCINATION_INCOMPLETE = "vaccination_incomplete"
    VACCINATION_NOT_YET_VALID = "vaccination_not_yet_valid"
    VACCINATION_EXPIRED = "vaccination_expired"
    RECOVERY_NOT_YET_VALID = "recovery_not_yet_valid"
    RECOVERY_EXPIRED = "recovery_expired"
    TEST_POSITIVE = "test_positive"
    TEST_TYPE_NOT_ACCEPTED = "test_type_not_accepted"
    TEST_EXPIRED = "test_expired"
    TEST_IN_FUTURE = "test_in_future"


DETAILS: dict[Reason | None, str] = {
    None: "The certificate is valid for entry.",
    Reason.BAD_PREFIX: "This is not a health certificate QR code (it does not start with HC1:).",
    Reason.BAD_BASE45: "The QR code text is damaged (invalid Base45 characters).",
    Reason.BAD_COMPRESSION: "The QR code content is damaged (it does not decompress).",
    Reason.BAD_COSE: "The QR code content is not a valid signed message.",
    Reason.BAD_CWT: "The signed message does not hold valid certificate claims.",
    Reason.BAD_PAYLOAD: "The certificate content does not follow the EU DCC schema.",
    Reason.TOO_LARGE: "The QR code content is too large to be a health certificate.",
    Reason.UNKNOWN_KEY: "The certificate was signed by an issuer that is not trusted.",
    Reason.BAD_SIGNATURE: "The certificate's signature is not valid: it may be forged or altered.",
    Reason.KEY_USAGE: "The issuer's key may not sign this type of certificate.",
    Reason.KEY_EXPIRED: "The issuer's signing key is not valid at the time of verification.",
    Reason.TOKEN_EXPIRED: "The certificate has expired.",
    Reason.TOKEN_NOT_YET_VALID: "The certificate is not valid yet (issued in the future).",
    Reason.REVOKED: "The certificate has been revoked.",
    Reason.NOT_IN_REGISTRY: "The certificate is not in the federal or regional register.",
    Reason.BAD_LINK: "This register link is malformed: it is not a certificate link.",
    # One sentence for a missing record and a wrong check code: the register must not be
    # enumerable through the verifier.
    Reason.NOT_FOUND: "The register has no certificate for this link.",
    Reason.VACCINE_NOT_ACCEPTED: "This vaccine is not accepted for entry.",
    Reason.VACCINATION_INCOMPLETE: "The vaccination course is not complete.",
    Reason.VACCINATION_NOT_YET_VALID: "The vaccination is not valid yet.",
    Reason.VACCINATION_EXPIRED: "The vaccination is no longer valid for entry.",
    Reason.RECOVERY_NOT_YET_VALID: "The recovery certificate is not valid yet.",
    Reason.RECOVERY_EXPIRED: "The recovery certificate is no longer valid for entry.",
    Reason.TEST_POSITIVE: "The test result is not negative.",
    Reason.TEST_TYPE_NOT_ACCEPTED: "This type of test is not accepted for entry (PCR required).",
    Reason.TEST_EXPIRED: "The test is too old for entry.",
    Reason.TEST_IN_FUTURE: "The test sample time lies in the future.",
}
