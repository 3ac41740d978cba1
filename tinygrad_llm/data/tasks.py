"""Deterministic generated tasks for tests and examples (no downloads, any size).

- :func:`copy_task`, :func:`reverse_task`, :func:`sort_task`: integer sequence pairs for
  sequence models (the classic sanity checks for attention and seq2seq).
- :func:`date_pairs`: date-format translation, "2024-03-05" -> "March 5, 2024", a small
  character-level seq2seq task.
- :func:`addition_pairs`: "123+45" -> "168".
- :func:`sentiment_task`: sentences from a small grammar with positive/negative labels,
  including negation ("not good") and contrast ("..., but ...") so that bag-of-words is not
  quite enough.

Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same data.
Month and weekday names are spelled out here, not taken from the locale.
"""
import datetime

import numpy as np

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _sequences(num_samples, seq_len, vocab_size, seed, low, min_len):
    if vocab_size <= low:
        raise ValueError(f"vocab_size={vocab_size} leaves no symbols above low={low}")
    rng = np.random.default_rng(seed)
    data = rng.integers(low, vocab_size, size=(num_samples, seq_len), dtype=np.int64)
    if min_len is None:
        return data
    if not 1 <= min_len <= seq_len:
        raise ValueError(f"need 1 <= min_len <= seq_len, got min_len={min_len}, "
                         f"seq_len={seq_len}")
    lengths = rng.integers(min_len, seq_len + 1, size=num_samples)
    return [row[:n] for row, n in zip(data, lengths)]


def copy_task(num_samples, seq_len, vocab_size, *, seed=0, low=0, min_len=None):
    """``(src, tgt)`` with ``tgt == src``; symbols uniform in ``[low, vocab_size)``.

    Fixed length gives (N, L) int64 arrays; ``min_len`` gives lists of 1-D arrays with
    lengths uniform in ``[min_len, seq_len]``. ``low`` reserves ids for special tokens.
    """
    src = _sequences(num_samples, seq_len, vocab_size, seed, low, min_len)
    tgt = src.copy() if isinstance(src, np.ndarray) else [s.copy() for s in src]
    return src, tgt


def reverse_task(num_samples, seq_len, vocab_size, *, seed=0, low=0, min_len=None):
    """``(src, tgt)`` with ``tgt = src[::-1]`` (per row)."""
    src = _sequences(num_samples, seq_len, vocab_size, seed, low, min_len)
    if isinstance(src, np.ndarray):
        return src, src[:, ::-1].copy()
    return src, [s[::-1].copy() for s in src]


def sort_task(num_samples, seq_len, vocab_size, *, seed=0, low=0, min_len=None):
    """``(src, tgt)`` with ``tgt = sorted(src)`` (per row, ascending)."""
    src = _sequences(num_samples, seq_len, vocab_size, seed, low, min_len)
    if isinstance(src, np.ndarray):
        return src, np.sort(src, axis=1)
    return src, [np.sort(s) for s in src]


def format_date(date, fmt):
    """Write a ``datetime.date`` in one of :data:`DATE_FORMATS`.

    iso "2024-03-05", long "March 5, 2024", short "Mar 5, 2024", dmy "05/03/2024",
    mdy "03/05/2024", day_month "5 March 2024", weekday "Tuesday, March 5, 2024".
    """
    month = MONTHS[date.month - 1]
    if fmt == "iso":
        return f"{date.year:04d}-{date.month:02d}-{date.day:02d}"
    if fmt == "long":
        return f"{month} {date.day}, {date.year}"
    if fmt == "short":
        return f"{month[:3]} {date.day}, {date.year}"
    if fmt == "dmy":
        return f"{date.day:02d}/{date.month:02d}/{date.year:04d}"
    if fmt == "mdy":
        return f"{date.month:02d}/{date.day:02d}/{date.year:04d}"
    if fmt == "day_month":
        return f"{date.day} {month} {date.year}"
    if fmt == "weekday":
        return f"{WEEKDAYS[date.weekday()]}, {month} {date.day}, {date.year}"
    raise ValueError(f"unknown date format {fmt!r}; choose from {DATE_FORMATS}")


DATE_FORMATS = ("iso", "long", "short", "dmy", "mdy", "day_month", "weekday")


def date_pairs(num_samples, *, seed=0, source_format="mixed", target_format="long",
               start=datetime.date(1950, 1, 1), end=datetime.date(2049, 12, 31)):
    """``[(source, target), ...]``: the same random date written two ways.

    Dates are uniform between ``start`` and ``end``; ``source_format="mixed"`` picks a
    format per sample among every format except the target's.
    """
    if source_format != "mixed":
        format_date(start, source_format)            # validates the name
    format_date(start, target_format)
    rng = np.random.default_rng(seed)
    span = (end - start).days
    if span < 0:
        raise ValueError(f"end {end} is before start {start}")
    offsets = rng.integers(0, span + 1, size=num_samples)
    choices = [f for f in DATE_FORMATS if f != target_format]
    picks = rng.integers(0, len(choices), size=num_samples)
    pairs = []
    for off, pick in zip(offsets, picks):
        d = start + datetime.timedelta(days=int(off))
        fmt = choices[pick] if source_format == "mixed" else source_format
        pairs.append((format_date(d, fmt), format_date(d, target_format)))
    return pairs


def addition_pairs(num_samples, *, max_digits=3, seed=0):
    """``[("a+b", "sum"), ...]`` with operands of 1..``max_digits`` digits."""
    rng = np.random.default_rng(seed)
    hi = 10 ** max_digits
    a = rng.integers(0, hi, size=num_samples)
    b = rng.integers(0, hi, size=num_samples)
    return [(f"{x}+{y}", str(x + y)) for x, y in zip(a.tolist(), b.tolist())]


_SUBJECTS = ("the movie", "the film", "this book", "the story", "the acting", "the music",
             "the ending", "the food", "the service", "this phone", "the plot", "the show")
_POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "fun", "charming",
             "moving", "delightful", "superb")
_NEGATIVE = ("bad", "terrible", "awful", "boring", "dull", "weak", "disappointing",
             "painful", "poor", "bland")
_INTENSIFIERS = ("", "", "very ", "really ", "truly ", "quite ", "extremely ")
_LIKE = ("loved", "liked", "enjoyed", "adored")
_DISLIKE = ("hated", "disliked", "regretted", "could not stand")
_BE = ("was", "is", "seemed", "felt")


def _clause(rng, positive):
    """One clause whose sentiment is ``positive``; negation may flip the adjective."""
    subject = _SUBJECTS[rng.integers(len(_SUBJECTS))]
    if rng.random() < 0.25:                                   # "i loved the movie"
        verbs = _LIKE if positive else _DISLIKE
        return f"i {verbs[rng.integers(len(verbs))]} {subject}"
    negated = rng.random() < 0.3
    adjectives = _POSITIVE if positive != negated else _NEGATIVE
    adjective = adjectives[rng.integers(len(adjectives))]
    be = _BE[rng.integers(len(_BE))]
    # "not extremely awful" is not clearly positive, so negation takes no intensifier.
    intensifier = "" if negated else _INTENSIFIERS[rng.integers(len(_INTENSIFIERS))]
    return f"{subject} {be} {'not ' if negated else ''}{intensifier}{adjective}"


def sentiment_task(num_samples, *, seed=0):
    """``(texts, labels)``: ``labels`` int64, 1 = positive, 0 = negative (SST-2's convention).

    Grammar: a sentence is one clause, two clauses of the same sentiment joined by "and",
    or "<clause of the other sentiment>, but <clause>" (the label follows the clause after
    "but"). A clause is "<subject> <be> [not | intensifier] <adjective>" (negation flips
    the adjective's polarity) or "i <liked|hated> <subject>". Labels are balanced.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_samples) % 2).astype(np.int64)
    texts = []
    for label in labels:
        positive = bool(label)
        shape = rng.random()
        if shape < 0.5:
            text = _clause(rng, positive)
        elif shape < 0.75:
            text = f"{_clause(rng, positive)} and {_clause(rng, positive)}"
        else:
            text = f"{_clause(rng, not positive)}, but {_clause(rng, positive)}"
        texts.append(text)
    return texts, labels
