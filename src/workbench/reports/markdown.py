"""Putting text from a dataset into a report's Markdown safely.

Names in a dataset (segments, channels, experiment names, a dataset's own
name) are data, not markup. ``escape`` makes them show exactly as written:
HTML special characters become entities and Markdown punctuation is
backslash-escaped, so ``<script>`` or ``*bold*`` appear as text::

    Markdown(f"The largest segment is **{escape(top)}** ({share:.0%} of users).")

``note`` and ``money`` are the two phrasings every report uses.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


def escape(value) -> str:
    """``str(value)`` safe to put inside Markdown: shows as written, never as markup."""
    text = html.escape(str(value), quote=False)  # entities without "#", which is escaped below
    return _MD_SPECIAL.sub(r"\\\1", text)


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
