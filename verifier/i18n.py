"""Russian sentences for the verdict's `detail`, and the `Accept-Language` choice.

Reason codes never change with the language: only `detail` does. The English sentences
stay in `verifier.reasons`; this module maps every reason code (a string, so that codes
added to the enum later are checked by the tests against this table) to Russian.
"""

from __future__ import annotations

from functools import lru_cache

LANGUAGES = ("en", "ru")

# None (the valid verdict) is keyed by the empty string.
DETAILS_RU: dict[str, str] = {
    "": "Сертификат действителен для входа.",
    "bad_prefix": "Это не QR-код COVID-сертификата (он не начинается с HC1:).",
    "bad_base45": "Текст QR-кода повреждён (недопустимые символы Base45).",
    "bad_compression": "Содержимое QR-кода повреждено (не распаковывается).",
    "bad_cose": "Содержимое QR-кода не является корректным подписанным сообщением.",
    "bad_cwt": "Подписанное сообщение не содержит корректных данных сертификата.",
    "bad_payload": "Содержимое сертификата не соответствует схеме EU DCC.",
    "too_large": "Содержимое QR-кода слишком велико для сертификата.",
    "unknown_key": "Сертификат подписан издателем, которому нет доверия.",
    "bad_signature": "Подпись сертификата недействительна: он может быть подделан или изменён.",
    "key_usage": "Ключ издателя не может подписывать сертификаты этого типа.",
    "key_expired": "Ключ подписи издателя недействителен на момент проверки.",
    "token_expired": "Срок действия сертификата истёк.",
    "token_not_yet_valid": "Сертификат ещё не действует (выдан в будущем).",
    "revoked": "Сертификат отозван.",
    "not_in_registry": "Сертификата нет в федеральном или региональном реестре.",
    "vaccination_incomplete": "Курс вакцинации не завершён.",
    "vaccination_not_yet_valid": "Вакцинация ещё не действует.",
    "vaccination_expired": "Вакцинация больше не действительна для входа.",
    "vaccine_not_accepted": "Эта вакцина не принимается для входа.",
    "recovery_not_yet_valid": "Сертификат о перенесённом заболевании ещё не действует.",
    "recovery_expired": "Сертификат о перенесённом заболевании больше не действителен для входа.",
    "test_positive": "Результат теста не является отрицательным.",
    "test_type_not_accepted": "Этот тип теста не принимается для входа (нужен ПЦР).",
    "test_expired": "Тест слишком старый для входа.",
    "test_in_future": "Время взятия пробы указано в будущем.",
    "bad_link": "Это не ссылка на сертификат с Госуслуг, или ссылка повреждена.",
    "not_found": "Сертификат по этой ссылке не найден в реестре.",
}


def detail_ru(reason: str | None) -> str:
    """The Russian sentence for a reason code (None: the valid verdict)."""
    text = DETAILS_RU.get(reason or "")
    return text if text is not None else "Сертификат недействителен."


@lru_cache(maxsize=256)
def _choose(header: bytes) -> str:
    best, best_q = "en", -1.0
    for item in header[:512].split(b",")[:32]:
        tag, _, params = item.strip().partition(b";")
        primary = tag.strip().split(b"-", 1)[0].lower()
        if primary not in (b"ru", b"en"):
            continue
        q = 1.0
        for param in params.split(b";"):
            name, _, value = param.strip().partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if not 0.0 < q <= 1.0:
            continue
        # The first of equal weights wins: a header lists its preferences in order.
        if q > best_q:
            best, best_q = primary.decode(), q
    return best


def choose(accept_language: bytes | str | None) -> str:
    """ "ru" when the `Accept-Language` header prefers Russian to English, else "en"."""
    if not accept_language:
        return "en"
    raw = (
        accept_language.encode("latin-1", "replace")
        if isinstance(accept_language, str)
        else accept_language
    )
    return _choose(raw)
