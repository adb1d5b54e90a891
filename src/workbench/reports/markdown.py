"""Putting text from a dataset into a report's Markdown safely.

Names in a dataset (segments, channels, experiment names, a dataset's own
name) are data, not markup. ``escape`` makes them show exactly as written:
HTML special characters become entities, Markdown punctuation is
backslash-escaped, and ``:`` and ``@`` become character references, so
``<script>``, ``*bold*``, a URL or an e-mail address appear as text (a URL
never becomes a live link, which would also show the backslashes); line
breaks become spaces, so a name cannot start a heading, list or code block::

    Markdown(f"The largest segment is **{escape(top)}** ({share:.0%} of users).")

``note`` and ``money`` are the two phrasings every report uses.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")
_LINE_BREAK = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")
#: the characters an autolink needs (``https://``, ``me@host``), as references
_LINK_CHARS = {":": "&#58;", "@": "&#64;"}


def escape(value) -> str:
    """``str(value)`` safe to put inside Markdown: shows as written, never as markup or a link."""
    text = html.escape(_LINE_BREAK.sub(" ", str(value)), quote=False)  # entities without "#", which is escaped below
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return re.sub("[:@]", lambda m: _LINK_CHARS[m.group()], text)


def money(value: float, currency: str) -> str:
    """An amount with two decimals and its (escaped) currency, e.g.
    ``1,234.50 USD``; ``currency`` "" (a dataset without one) gives the number alone."""
    return f"{value:,.2f} {escape(currency) if currency else ''}".strip()


def note(text: str) -> None:
    """Show a visible note in the report, e.g. where the data cannot support a
    section. ``text`` is Markdown: escape dataset names in it."""
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** {text}"))


__all__ = ["escape", "money", "note"]
