"""Putting text from a dataset into a report's Markdown safely.

Names in a dataset (segments, channels, experiment names, a dataset's own
name) are data, not markup. ``escape`` makes them show exactly as written:
every ASCII punctuation character becomes a numeric character reference
(``&#42;``), so ``<script>``, ``*bold*`` or a URL appear as text (a URL does
not become a live link, and no stray backslash shows); line breaks become
spaces, so a name cannot start a heading, list or code block::

    Markdown(f"The largest segment is **{escape(top)}** ({share:.0%} of users).")

``note`` and ``money`` are the two phrasings every report uses.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = frozenset(string.punctuation)
_LINE_BREAK = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")


def escape(value) -> str:
    """``str(value)`` safe to put inside Markdown: shows as written, never as markup or a link."""
    text = _LINE_BREAK.sub(" ", str(value))
    return "".join(f"&#{ord(c)};" if c in _PUNCTUATION else c for c in text)


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
