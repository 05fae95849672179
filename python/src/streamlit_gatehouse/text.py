"""Putting user data into Streamlit Markdown safely."""

from __future__ import annotations

from collections.abc import Iterable

# Markdown, plus Streamlit's own :color[...], :material/icon: and $math$ syntax.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~<>$:&")


def escape_markdown(text: str) -> str:
    """`text` shown literally by `st.markdown` (no formatting, links or HTML)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def role_list(roles: Iterable[str], conjunction: str = "and") -> str:
    """Role names in bold for a sentence: "**a**", "**a** or **b**", "**a**, **b** and **c**"."""
    names = [f"**{escape_markdown(role)}**" for role in roles]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"
