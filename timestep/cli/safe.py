"""Text from a run, shown as data: what a model wrote never acts on the terminal.

A run's text (tool names, arguments, outputs, errors, run ids, messages) is attacker-controlled:
a prompt injection steers the model that writes it. Everything that prints it goes through
`visible`: control characters, escape sequences, bidirectional overrides, zero-width and other
invisible formatting characters are shown as Python-style escapes (`\\x1b`, `\\u202e`), so that
no part of a pending call can be hidden, recoloured, linked or reordered on the approver's
screen. Tables are built from rich `Text` objects (`cell`), never parsed as rich markup.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

_SHOWN_AS_ESCAPES = ("Cc", "Cf", "Zl", "Zp", "Co", "Cs")
"""Unicode categories never printed as they are: controls, format characters (bidi
overrides, zero-width characters), line/paragraph separators, private use, surrogates."""


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(character: str) -> str:
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: object, *, keep_newlines: bool = False) -> str:
    """`text` (made a string) with every character that would not print as itself escaped;
    with `keep_newlines`, line feeds and tabs stay (multi-line output, logs)."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable() and value.isascii():
        return value  # the common case: nothing to look at
    kept = "\n\t" if keep_newlines else ""
    return "".join(
        _escape(c) if c not in kept and (unicodedata.category(c) in _SHOWN_AS_ESCAPES) else c
        for c in value
    )


def json_visible(document: str) -> str:
    """JSON text with the same characters escaped as JSON escapes (`\\u202e`): the same
    data, valid JSON, and nothing in it acts on a terminal it is printed to."""
    if document.isascii():
        return document  # json.dumps escaped every control character already

    def escape(character: str) -> str:
        code = ord(character)
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return "".join(
        escape(c) if unicodedata.category(c) in _SHOWN_AS_ESCAPES else c for c in document
    )


def cell(text: object) -> Text:
    """A table cell of run text: escaped (`visible`) and never read as rich markup."""
    from rich.text import Text

    return Text(visible(text))
