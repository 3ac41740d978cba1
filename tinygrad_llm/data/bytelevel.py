"""GPT-2's byte-level building blocks: the byte <-> unicode map and the pre-tokenization regex.

Byte-level BPE works on the UTF-8 bytes of the text, so every string can be encoded and no
token is ever unknown. GPT-2 shows each of the 256 byte values as one printable unicode
character, so that vocab.json and merges.txt stay readable text files:

- the 188 bytes that are already printable and not a space (``!``..``~``, ``¡``..``¬``,
  ``®``..``ÿ``) stand for themselves;
- the other 68 (control bytes, space, DEL, NBSP, soft hyphen, ...) are shifted to
  ``chr(256 + k)`` in byte order: space (0x20) becomes ``Ġ``, newline (0x0A) ``Ċ``.

The pre-tokenizer splits text into words before BPE, so merges never cross a word boundary.
GPT-2's pattern (written for the third-party ``regex`` module) is::

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

The standard library's ``re`` has no ``\\p{..}`` classes, and its ``\\w``/``\\d``/``\\s`` are
not the same sets, so we build the classes ourselves:

- ``\\p{L}`` (letters) and ``\\p{N}`` (numbers) become explicit character classes of every code
  point whose ``unicodedata.category`` starts with ``L`` (Lu Ll Lt Lm Lo) or ``N``
  (Nd Nl No). ``[^\\W\\d_]`` would be wrong: it calls ``²`` or ``½`` (No) a letter.
- ``\\s`` becomes the Unicode White_Space property, which is what Oniguruma (HF ``tokenizers``)
  and ``regex`` use. Python's own ``\\s`` differs: it also matches U+001C..U+001F.

The classes follow the Unicode version of the running Python's ``unicodedata`` (14.0 on
Python 3.11); characters assigned in a later Unicode version may be classified differently.
Building the classes scans all 1.1M code points once (about 0.3 s), on first use.

Speed: ``re`` tests characters of the Basic Multilingual Plane (U+0000..U+FFFF) against a
class with a table lookup, but tests characters beyond it against a list of ranges, one by
one, and it does so on every *failed* match too. So a second copy of the pattern, with the
classes cut to the BMP, is used for texts without astral characters (most text): same
result, about 4x faster.
"""
import functools
import re
import unicodedata

# Unicode's White_Space property (PropList.txt); stable since Unicode 6.3 removed U+180E.
WHITE_SPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


@functools.lru_cache(maxsize=None)
def bytes_to_unicode():
    """Return GPT-2's map ``{byte value: printable unicode character}`` (256 entries).

    Printable non-space bytes map to themselves; the remaining ones, taken in increasing byte
    order, map to ``chr(256)``, ``chr(257)``, ... . The dict's insertion order is GPT-2's base
    vocabulary order: ids 0..187 for the printable bytes, then 188..255 for the shifted ones.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


@functools.lru_cache(maxsize=None)
def _byte_translation_tables():
    """str.translate tables: latin-1 char of a byte -> its GPT-2 char, and back."""
    encoder = bytes_to_unicode()
    to_unicode = {b: encoder[b] for b in range(256)}
    to_bytes = {ord(c): chr(b) for b, c in encoder.items()}
    return to_unicode, to_bytes


def bytes_to_token_str(data):
    """Map raw bytes to GPT-2's printable string (one character per byte)."""
    to_unicode, _ = _byte_translation_tables()
    # latin-1 turns each byte into the code point of the same value; translate remaps it.
    return data.decode("latin-1").translate(to_unicode)


def token_str_to_bytes(token):
    """Inverse of :func:`bytes_to_token_str`; ValueError for a character outside the map."""
    _, to_bytes = _byte_translation_tables()
    mapped = token.translate(to_bytes)
    try:
        return mapped.encode("latin-1")
    except UnicodeEncodeError:
        bad = next(c for c in token if ord(c) not in to_bytes)
        raise ValueError(f"character {bad!r} (U+{ord(bad):04X}) in token {token!r} is not one "
                         "of GPT-2's 256 byte characters") from None


def _ranges_to_class(codepoints):
    """Compress sorted code points into a regex class body such as ``a-z\\u00e0-\\u00f6``."""
    parts = []
    start = prev = None
    for cp in codepoints:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            parts.append((start, prev))
            start = prev = cp
    if start is not None:
        parts.append((start, prev))

    def esc(cp):
        return f"\\U{cp:08x}"
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in parts)


@functools.lru_cache(maxsize=None)
def unicode_classes(bmp_only=False):
    """Return ``(letters, numbers, spaces)`` as regex class bodies (no brackets).

    letters = every code point of general category L*, numbers = N*, spaces = White_Space;
    with ``bmp_only`` only code points below U+10000.
    """
    letters, numbers = [], []
    category = unicodedata.category
    for cp in range(0x10000 if bmp_only else 0x110000):
        cat = category(chr(cp))[0]
        if cat == "L":
            letters.append(cp)
        elif cat == "N":
            numbers.append(cp)
    spaces = _ranges_to_class(sorted(ord(c) for c in WHITE_SPACE))
    return _ranges_to_class(letters), _ranges_to_class(numbers), spaces


@functools.lru_cache(maxsize=None)
def gpt2_pretokenize_regex(bmp_only=False):
    """GPT-2's pre-tokenization pattern compiled with the standard ``re`` module.

    Same alternatives, in the same order, as :data:`GPT2_PATTERN`, with ``\\p{L}``, ``\\p{N}``
    and ``\\s`` replaced by the explicit classes of :func:`unicode_classes`; ``(?!\\S)`` is
    written ``(?![^<spaces>])``. ``bmp_only`` gives the fast copy for text without
    characters beyond U+FFFF.
    """
    L, N, S = unicode_classes(bmp_only)
    pattern = (
        r"'s|'t|'re|'ve|'m|'ll|'d"
        rf"| ?[{L}]+"
        rf"| ?[{N}]+"
        rf"| ?[^{S}{L}{N}]+"
        rf"|[{S}]+(?![^{S}])"
        rf"|[{S}]+"
    )
    return re.compile(pattern)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def gpt2_pretokenize(text):
    """Split ``text`` into GPT-2's pre-tokens; ``"".join(result) == text`` always holds.

    >>> gpt2_pretokenize("Hello  world's 42!")
    ['Hello', ' ', ' world', "'s", ' 42', '!']
    """
    # str.isascii is O(1) in CPython; the astral search is one range test per character.
    bmp_only = text.isascii() or _ASTRAL.search(text) is None
    return gpt2_pretokenize_regex(bmp_only).findall(text)
