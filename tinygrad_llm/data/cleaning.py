"""Text cleaning: the preprocessing steps of the documents, each optional and composable.

Every step is a plain function ``str -> str``; :class:`Pipeline` chains any of them (or your
own), and :func:`clean_text` runs the usual ones in a fixed, sensible order::

    strip_html -> normalize_unicode -> lowercase -> remove_punctuation
    -> remove_special_characters -> normalize_whitespace -> remove_stopwords -> stem

Character classes follow Unicode general categories (``unicodedata.category``):
punctuation is ``P*`` (``.,;:!?'"()[]{}-_/@#%&*`` and their Unicode cousins), special
characters are symbols ``S*`` (``$+<=>^`|~``, currency, math, emoji) and invisible
control/format characters ``Cc``/``Cf`` other than whitespace. Letters, digits and combining
marks of every script are kept, so Chinese or accented text survives cleaning.

Stemming uses the ``snowballstemmer`` library ("english" is Porter2, "porter" is Porter's
1980 algorithm); stopwords come from :mod:`tinygrad_llm.data.stopwords`.
"""
import functools
import html.parser
import re
import unicodedata

from .stopwords import ENGLISH_STOP_WORDS

__all__ = [
    "strip_html", "normalize_unicode", "lowercase", "remove_punctuation",
    "remove_special_characters", "normalize_whitespace", "remove_stopwords", "stem",
    "Pipeline", "make_cleaner", "clean_text",
]

# Tags after which a rendered page starts a new line; inline tags (<b>, <a>, <span>) are
# removed without a break so that "<b>bo</b>ld" stays one word.
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 h3 "
    "h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead title tr "
    "ul".split())
_INVISIBLE_TAGS = frozenset({"script", "style", "head", "template", "noscript"})


class _TextExtractor(html.parser.HTMLParser):
    """Collects the text nodes of an HTML document (entities already decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self._hidden_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._hidden_depth == 0:
            self.parts.append(data)


def strip_html(text):
    """Remove HTML markup, keeping the visible text.

    Tags, comments, ``<!DOCTYPE>`` and the contents of ``<script>``/``<style>`` are dropped;
    entities (``&amp;``, ``&#233;``) are decoded; block-level tags (``<p>``, ``<br>``,
    ``<li>``, ...) become a newline so words of adjacent blocks do not fuse. Uses the standard
    library's tolerant ``html.parser``: a stray ``<`` in plain text ("a < b") is kept.

    >>> strip_html("<p>Fish &amp; chips</p><script>x()</script>")
    '\\nFish & chips\\n'
    """
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def normalize_unicode(text, form="NFKC"):
    """Unicode normalization (``unicodedata.normalize``); NFKC folds ``ﬁ`` -> ``fi``,
    full-width ``Ａ`` -> ``A`` and composes ``e`` + U+0301 into ``é``."""
    if form not in ("NFC", "NFD", "NFKC", "NFKD"):
        raise ValueError(f"unknown normalization form {form!r}; use NFC, NFD, NFKC or NFKD")
    return unicodedata.normalize(form, text)


def lowercase(text):
    """Lowercase with ``str.lower`` (Unicode-aware: ``"ÉTÉ"`` -> ``"été"``)."""
    return text.lower()


@functools.lru_cache(maxsize=65536)
def _category(ch):
    return unicodedata.category(ch)


def _replace_chars(text, drop, replacement, keep):
    """Replace each character for which ``drop(ch)`` holds (and not in ``keep``)."""
    return "".join(replacement if (ch not in keep and drop(ch)) else ch for ch in text)


def remove_punctuation(text, replacement=" ", keep=""):
    """Replace every punctuation character (Unicode category ``P*``) by ``replacement``.

    The default replacement is a space, so "well-known" becomes "well known" rather than
    "wellknown"; run :func:`normalize_whitespace` afterwards to collapse the spaces.
    Characters in ``keep`` are left alone (e.g. ``keep="'"`` keeps apostrophes).
    """
    return _replace_chars(text, lambda ch: _category(ch)[0] == "P", replacement, keep)


def remove_special_characters(text, replacement=" ", keep=""):
    """Replace symbols (``S*``: ``$ + < = > ^ ` | ~``, currency, math, emoji) and invisible
    control/format characters (``Cc``, ``Cf``; whitespace excepted) by ``replacement``."""
    def drop(ch):
        cat = _category(ch)
        return cat[0] == "S" or (cat in ("Cc", "Cf") and not ch.isspace())
    return _replace_chars(text, drop, replacement, keep)


_SPACES = re.compile(r"\s+")
_SPACES_NO_NEWLINE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_whitespace(text, keep_newlines=False):
    """Collapse every run of whitespace into one space and strip both ends.

    With ``keep_newlines=True`` line breaks survive: spaces and tabs collapse within a line,
    spaces around a newline are removed and 3 or more newlines become one blank line.
    """
    if not keep_newlines:
        return _SPACES.sub(" ", text).strip()
    text = _SPACES_NO_NEWLINE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def _as_words(text_or_tokens):
    """Split a string on whitespace; pass a list of tokens through. Returns (words, was_str)."""
    if isinstance(text_or_tokens, str):
        return text_or_tokens.split(), True
    return list(text_or_tokens), False


def remove_stopwords(text_or_tokens, stopwords=None):
    """Drop the words whose lowercase form is in ``stopwords`` (default
    :data:`~tinygrad_llm.data.stopwords.ENGLISH_STOP_WORDS`).

    A string is split on whitespace and re-joined with single spaces; a list of tokens
    gives a list back.
    """
    stopwords = ENGLISH_STOP_WORDS if stopwords is None else frozenset(stopwords)
    words, was_str = _as_words(text_or_tokens)
    kept = [w for w in words if w.lower() not in stopwords]
    return " ".join(kept) if was_str else kept


@functools.lru_cache(maxsize=None)
def get_stemmer(algorithm="english"):
    """A cached ``snowballstemmer`` stemmer ("english" = Porter2, "porter" = Porter 1980)."""
    import snowballstemmer
    if algorithm not in snowballstemmer.algorithms():
        raise ValueError(f"unknown snowball algorithm {algorithm!r}; "
                         f"choose from {sorted(snowballstemmer.algorithms())}")
    return snowballstemmer.stemmer(algorithm)


def stem(text_or_tokens, algorithm="english"):
    """Reduce each word to its stem with the Snowball stemmer ``algorithm``.

    "running runs easily" -> "run run easili" (Porter2). Strings are split on whitespace and
    re-joined with single spaces; a list of tokens gives a list back.
    """
    words, was_str = _as_words(text_or_tokens)
    stems = get_stemmer(algorithm).stemWords(words)
    return " ".join(stems) if was_str else list(stems)


class Pipeline:
    """Apply callables in order: ``Pipeline(f, g, h)(x) == h(g(f(x)))``.

    Steps are any ``str -> str`` functions (``functools.partial`` for arguments).
    ``pipeline.map(texts)`` cleans a list.

    >>> Pipeline(strip_html, lowercase, normalize_whitespace)("<b>Hi</b>   THERE")
    'hi there'
    """

    def __init__(self, *steps):
        for i, step in enumerate(steps):
            if not callable(step):
                raise TypeError(f"pipeline step {i} is {step!r}, which is not callable")
        self.steps = tuple(steps)

    def __call__(self, text):
        for step in self.steps:
            text = step(text)
        return text

    def map(self, texts):
        """Apply the pipeline to each text of an iterable; returns a list."""
        return [self(t) for t in texts]

    def __len__(self):
        return len(self.steps)

    def __repr__(self):
        names = [getattr(getattr(s, "func", s), "__name__", repr(s)) for s in self.steps]
        return f"Pipeline({', '.join(names)})"


def make_cleaner(*, strip_html=True, normalize_unicode=None, lowercase=True,
                 remove_punctuation=True, remove_special_characters=True,
                 normalize_whitespace=True, remove_stopwords=False, stem=False,
                 stopwords=None, stemmer="english", keep=""):
    """Build the :class:`Pipeline` that :func:`clean_text` runs, for reuse on many texts.

    ``normalize_unicode`` is ``None`` (skip) or a form name ("NFKC"); ``stem`` uses the
    snowball ``stemmer`` algorithm; ``keep`` lists characters that punctuation and special
    character removal leave alone.
    """
    steps = []
    if strip_html:
        steps.append(_STEP["strip_html"])
    if normalize_unicode:
        steps.append(functools.partial(_STEP["normalize_unicode"], form=normalize_unicode))
    if lowercase:
        steps.append(_STEP["lowercase"])
    if remove_punctuation:
        steps.append(functools.partial(_STEP["remove_punctuation"], keep=keep))
    if remove_special_characters:
        steps.append(functools.partial(_STEP["remove_special_characters"], keep=keep))
    if normalize_whitespace:
        steps.append(_STEP["normalize_whitespace"])
    if remove_stopwords:
        steps.append(functools.partial(_STEP["remove_stopwords"], stopwords=stopwords))
    if stem:
        steps.append(functools.partial(_STEP["stem"], algorithm=stemmer))
    return Pipeline(*steps)


def clean_text(text, **options):
    """Clean one text; keyword options as in :func:`make_cleaner` (all steps on by default
    except stopword removal and stemming).

    >>> clean_text("<p>The CATS are running!!</p>", remove_stopwords=True, stem=True)
    'cat run'
    """
    if not isinstance(text, str):
        raise TypeError(f"clean_text expects a str, got {type(text).__name__}")
    return make_cleaner(**options)(text)


# The keyword arguments of make_cleaner shadow the step functions' names inside it, so it
# looks them up here.
_STEP = {
    "strip_html": strip_html, "normalize_unicode": normalize_unicode, "lowercase": lowercase,
    "remove_punctuation": remove_punctuation,
    "remove_special_characters": remove_special_characters,
    "normalize_whitespace": normalize_whitespace, "remove_stopwords": remove_stopwords,
    "stem": stem,
}
