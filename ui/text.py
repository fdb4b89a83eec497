"""User text (file names, URL parameters, anything typed) shown as text, never as markdown.

No Streamlit here. ``st.markdown``, ``st.caption``, ``st.toast``, the alert boxes and widget labels all render
Markdown: a file named ``[x](https://evil.example).png`` would become a live link, ``![p](https://…)`` a remote
image, ``:red[…]`` coloured text and ``$…$`` LaTeX. CommonMark lets a backslash escape any ASCII punctuation, and an
escaped character also breaks GFM's bare-URL autolinks, so escaping all of it keeps every such string literal.
"""

from __future__ import annotations

import string

_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})
MAX_SHOWN = 120  # characters of one user string shown; longer ones are cut with an ellipsis


def plain(value: object, *, limit: int = MAX_SHOWN) -> str:
    """``value`` as Markdown that renders as exactly its text (whitespace collapsed, cut to ``limit``)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.translate(_ESCAPES)
