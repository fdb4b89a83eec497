"""User text (file names, URL parameters, anything typed) shown as text, never as markdown.

No Streamlit here. ``st.markdown``, ``st.caption``, ``st.toast``, the alert boxes and widget labels all render
Markdown: a file named ``[x](https://evil.example).png`` would become a live link, ``![p](https://…)`` a remote
image, ``:red[…]`` coloured text and ``$…$`` LaTeX. CommonMark lets a backslash escape any ASCII punctuation, which
keeps all of that literal. Streamlit's renderer still turns bare URLs, ``www.`` names and e-mail addresses into live
links even when their punctuation is escaped (seen in Chromium), so a zero-width word joiner (U+2060) goes inside each
``://`` and ``www`` and before each ``@``: the text reads the same and no longer matches a link.
"""

from __future__ import annotations

import re
import string

JOINER = "\u2060"  # word joiner: invisible, breaks the renderer's URL, www. and e-mail autolinks
_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation} | {"@": JOINER + "\\@"})
_LINK_STARTS = re.compile(r"(?i)(\\:)(\\/\\/)|(w)(ww)")  # "://" of a URL (escaped), and "www"
MAX_SHOWN = 120  # characters of one user string shown; longer ones are cut with an ellipsis


def plain(value: object, *, limit: int = MAX_SHOWN) -> str:
    """``value`` as Markdown that renders as exactly its text (whitespace collapsed, cut to ``limit``)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _LINK_STARTS.sub(lambda m: JOINER.join(g for g in m.groups() if g), text.translate(_ESCAPES))
