"""Credentials: found in URLs, refused there, and hidden in any text.

A password never sits in a URL, a parameter or dataset.yml; it comes from an
environment variable (``password_env``) or a git-ignored ``dataset.local.yml``
(docs/backends.md). :func:`redact` hides what slipped through anyway -- URL
passwords, secret query parameters, and every secret value this process has
read -- as ``***`` (``postgresql://user:***@host/db``). No heavy imports, so
the reports layer can use it anywhere.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse

#: query parameters of a URL whose values are credentials
SECRET_PARAMS = ("password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "apikey", "private_key",
                 "credentials", "auth_token", "client_secret", "sas_token")
MASK = "***"
#: the file beside dataset.yml that may hold credentials (never committed)
LOCAL_CONFIG = "dataset.local.yml"

_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*:)(?P<secret>[^@\s/'\"]+)(?P<at>@)")
_QUERY = re.compile(r"(?P<head>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<secret>[^&\s'\"]+)", re.IGNORECASE)
_known: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Hide ``value`` in everything :func:`redact` cleans from now on (this process)."""
    if value and len(value) >= 3:
        _known.add(value)


def redact(text, secrets=()) -> str:
    """``text`` with every URL password, secret query parameter, and each of
    ``secrets`` (and every secret this process has read) replaced by ``***``."""
    if text is None:
        return text
    out = _USERINFO.sub(lambda m: m["head"] + MASK + m["at"], str(text))
    out = _QUERY.sub(lambda m: m["head"] + MASK, out)
    for s in sorted({*_known, *(s for s in secrets if s)}, key=len, reverse=True):
        # as written, URL-quoted, HTML-escaped and JSON-escaped
        for form in {s, urllib.parse.quote_plus(s), urllib.parse.quote(s, safe=""), html.escape(s), json.dumps(s)[1:-1]}:
            out = out.replace(form, MASK)
    return out


def redact_all(value, secrets=()):
    """:func:`redact` applied to every string in a nested dict/list/tuple."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact_all(k, secrets): redact_all(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_all(v, secrets) for v in value)
    return value


def url_credentials(text: str) -> list[str]:
    """The credentials written inside ``text`` (URL passwords, secret query values)."""
    found = [m["secret"] for m in _USERINFO.finditer(str(text))]
    found += [m["secret"] for m in _QUERY.finditer(str(text))]
    return found


__all__ = ["LOCAL_CONFIG", "MASK", "SECRET_PARAMS", "redact", "redact_all", "remember_secret", "url_credentials"]
