"""A hand-written English stopword list.

Stopwords are the very frequent function words (articles, pronouns, auxiliaries,
prepositions, conjunctions) that carry little topic information. Removing them shrinks
bag-of-words features; it hurts models that need syntax (language models, translation), so
the cleaning pipeline only removes them when asked.

The list is lowercase and contraction-free: :func:`~tinygrad_llm.data.cleaning.clean_text`
lowercases and strips punctuation before the lookup, so "Don't" arrives as "don" and "t",
both of which are listed. Negations ("not", "no", "nor") are included, as in most classic
lists; drop them from the set (``ENGLISH_STOP_WORDS - {"not", "no", "nor"}``) for sentiment
tasks, where they flip the meaning.
"""

_WORDS = """
a about above after again against all also am an and any are aren as at
be because been before being below between both but by
can cannot could couldn
d did didn do does doesn doing don down during
each either
few for from further
had hadn has hasn have haven having he her here hers herself him himself his how
i if in into is isn it its itself
just
ll
m me might mightn more most must mustn my myself
needn neither no nor not now
o of off on once only or other ought our ours ourselves out over own
re
s same shall shan she should shouldn so some such
t than that the their theirs them themselves then there these they this those through
to too
under until up upon us
ve very
was wasn we were weren what when where which while who whom why will with won would
wouldn
y you your yours yourself yourselves
"""

ENGLISH_STOP_WORDS = frozenset(_WORDS.split())
