"""SASLprep (RFC 4013), which PDF 2.0 applies to AES-256 passwords before hashing them.

A writer that follows ISO 32000-2 (section 7.6.4.3.3) encrypts with the SASLprep form of the
password; MuPDF compares the raw UTF-8, so a password typed with, say, a Roman numeral
character or a soft hyphen fails. :func:`saslprep` gives the form to retry with. Built on the
stdlib's RFC 3454 tables (:mod:`stringprep`), as a stored-string profile would, but allowing
unassigned code points, which RFC 4013 permits for queries such as a password check.
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = ["saslprep"]

_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogates
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties, deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str) -> str | None:
    """The SASLprep form of ``text``, or ``None`` when the profile forbids it.

    Steps of RFC 4013: non-ASCII spaces become U+0020, "commonly mapped to nothing"
    characters (B.1, such as the soft hyphen) are removed, the result is NFKC-normalised, then
    prohibited characters and mixed-direction text (RFC 3454 section 6) are refused.

    Examples:
        >>> saslprep("I\\u00adX"), saslprep("\\u2168"), saslprep("\\u00aa")
        ('IX', 'IX', 'a')
        >>> saslprep("a\\u0007") is None
        True
    """
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normal = unicodedata.normalize("NFKC", mapped)
    if any(test(c) for c in normal for test in _PROHIBITED):
        return None
    if any(stringprep.in_table_d1(c) for c in normal):  # right-to-left text must be all RTL, RTL at both ends
        if any(stringprep.in_table_d2(c) for c in normal):
            return None
        if not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])):
            return None
    return normal
