"""The links in emails to professionals: signed, expiring, and good for one advice request.

A token carries the case reference and the advice key, signed with the council's link secret
(``EHC_LINK_SECRET``) and stamped with the time it was made; it opens the page for that one
request and nothing else. It expires ``link_days`` (config/escalation.toml) after it was made;
every reminder carries a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from config.settings import Settings

_SALT = "ehc.advice-link.v1"


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


@dataclass(frozen=True)
class AdviceLink:
    reference: str
    advice_key: str


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_link_secret(), salt=_SALT)


def make_advice_token(settings: Settings, reference: str, advice_key: str) -> str:
    return _serializer(settings).dumps({"c": reference, "a": advice_key})


def advice_url(settings: Settings, reference: str, advice_key: str) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/advice/{make_advice_token(settings, reference, advice_key)}"


def read_advice_token(settings: Settings, token: str, max_age_days: int) -> AdviceLink:
    """The request a token opens. Raises ``LinkExpired`` or ``LinkInvalid`` (altered, made with
    another secret, or not a token at all)."""
    try:
        data = _serializer(settings).loads(token, max_age=max_age_days * 86400)
    except SignatureExpired as exc:
        raise LinkExpired(str(exc)) from None
    except BadSignature as exc:
        raise LinkInvalid(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str) \
            or not isinstance(data.get("a"), str):
        raise LinkInvalid("the token does not name an advice request")
    return AdviceLink(reference=data["c"], advice_key=data["a"])
