"""Putting text from a dataset into a report's Markdown safely.

Names in a dataset (segments, channels, experiment names, a dataset's own
name) are data, not markup. ``escape`` makes them show exactly as written:
HTML special characters become entities and Markdown punctuation is
backslash-escaped, so ``<script>`` or ``*bold*`` appear as text::

    Markdown(f"The largest segment is **{escape(top)}** ({share:.0%} of users).")
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


def escape(value) -> str:
    """``str(value)`` safe to put inside Markdown: shows as written, never as markup."""
    text = html.escape(str(value), quote=False)  # entities without "#", which is escaped below
    return _MD_SPECIAL.sub(r"\\\1", text)


__all__ = ["escape"]
