"""Text from outside (file names, OCR'd strings) made safe to print on a terminal."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with every control or format character (newlines, tabs, ESC, bidi overrides,
    ...) and backslash written as a Python-style escape, so a name cannot forge a line of
    output or send escape codes to the terminal; printable characters are kept as they are."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char)[0] == "C" or char in "\u2028\u2029":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)
