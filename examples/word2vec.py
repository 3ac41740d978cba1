"""word2vec skip-gram (seed 000, section 5.2): cosine-embedding model and negative sampling.

    python examples/word2vec.py [--quick] [--epochs N] [--dim 32] [--collapse] [--stdlib]

The corpus is generated so that the answers are known: sentences about 24 people whose
words differ along two independent factors, a gender (he / his vs she / her) and a role
(king and queen sit near "throne" and "crown", boy and girl near "school" and "toy", ...),
mixed with sentences about animals, foods and colours. Skip-gram pairs (center, context)
come from a window of 2 words on each side (``data.skipgram_pairs``).

Two models (tinygrad_llm/models/word2vec.py), both trained with Adam:

(a) seed 000's ``Word2Vec``: one table, CosineEmbeddingLoss on (context, target) pairs with
    y = +1, plus K sampled negatives per pair with y = -1. Without them the loss is minimised
    by making every vector point the same way (``--collapse`` trains that variant: the mean
    cosine between words goes to 1, cos(king, queen) = cos(king, bread) = 1.000, and what
    ranking is left lives in the last digits).
(b) ``SkipGramNegativeSampling`` (SGNS): -log s(u_o . v_c) - sum_k log s(-u_k . v_c), with
    negatives drawn from the unigram distribution raised to 0.75 (``data.NegativeSampler``).

Evaluation (``tinygrad_llm.metrics``): nearest neighbours (is the most cosine-similar word of
the same kind: person, animal, food, colour?) and analogies by 3CosAdd, e.g.
king - man + woman -> queen, over every ordered pair of the 12 gender pairs (264 questions),
each with two candidate sets: the whole vocabulary, and only the words of the answer key.
The second matters for the one-table model: there a word's vector is pulled towards the
vectors of the words around it, so king's nearest word is "throne" or "crown" (first-order
similarity, co-occurrence), while SGNS's two tables make words with the same contexts similar
(second-order: king -> prince, queen). Among the answer-key words both kinds rank right.
``--stdlib`` also trains SGNS on a slice of the built-in corpus and prints a few words'
neighbours (not scored: no answer key there).
"""
import argparse
import time

import numpy as np

from tinygrad_llm import optim
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import NegativeSampler, WordTokenizer, default_corpus, skipgram_pairs
from tinygrad_llm.metrics import analogy, cosine_similarity, nearest_neighbors
from tinygrad_llm.models.word2vec import SkipGramNegativeSampling, Word2Vec, Word2VecConfig

# (male, female, role words): the role words appear next to both members of the pair.
PAIRS = [
    ("king", "queen", ("throne", "crown", "kingdom")),
    ("prince", "princess", ("castle", "heir", "palace")),
    ("man", "woman", ("street", "city", "market")),
    ("boy", "girl", ("school", "toy", "playground")),
    ("father", "mother", ("children", "home", "family")),
    ("son", "daughter", ("parents", "cradle", "nursery")),
    ("brother", "sister", ("sibling", "twin", "games")),
    ("uncle", "aunt", ("nephew", "niece", "visit")),
    ("husband", "wife", ("wedding", "marriage", "ring")),
    ("actor", "actress", ("stage", "film", "theatre")),
    ("waiter", "waitress", ("restaurant", "menu", "tray")),
    ("lord", "lady", ("manor", "estate", "servants")),
]
SUBJECT = {"m": "he", "f": "she"}
POSSESSIVE = {"m": "his", "f": "her"}
ANIMALS = ("dog", "cat", "horse", "cow", "sheep", "goat", "pig", "duck")
FOODS = ("bread", "apple", "cheese", "rice", "soup", "cake", "fish", "pear")
COLORS = ("red", "blue", "green", "yellow", "black", "white", "brown", "grey")
PERSON_TEMPLATES = (
    "{subj} is {p} of {r}",
    "the {r} {p} and {poss} {r2}",
    "{poss} {p} in {r}",
    "then {subj} the {p} saw the {r}",
    "a {r} for {poss} {p} today",
)
THING_TEMPLATES = (
    "the {c} {a} ate the {f}",
    "a {a} likes {f} and {f2}",
    "the {a} was {c} and {c2}",
    "some {f} with {f2} and {c} {f3}",
)


def royal_corpus(n_sentences, seed=0):
    """A list of generated sentences (see the module docstring) and the answer key."""
    rng = np.random.default_rng(seed)

    def pick(options):
        return options[rng.integers(len(options))]
    sentences = []
    for _ in range(n_sentences):
        if rng.random() < 0.6:
            male, female, roles = PAIRS[rng.integers(len(PAIRS))]
            g = "m" if rng.random() < 0.5 else "f"
            sentences.append(pick(PERSON_TEMPLATES).format(
                subj=SUBJECT[g], poss=POSSESSIVE[g], p=male if g == "m" else female,
                r=pick(roles), r2=pick(roles)))
        else:
            sentences.append(pick(THING_TEMPLATES).format(
                a=pick(ANIMALS), f=pick(FOODS), f2=pick(FOODS), f3=pick(FOODS),
                c=pick(COLORS), c2=pick(COLORS)))
    categories = {"person": [w for m, f, _ in PAIRS for w in (m, f)], "animal": ANIMALS,
                  "food": FOODS, "color": COLORS}
    return sentences, categories


def analogy_questions():
    """(a, b, c, expected) with expected = a - b + c: for pairs p != q, q.m - p.m + p.f ->
    q.f (king - man + woman -> queen) and q.f - p.f + p.m -> q.m."""
    out = []
    for p_m, p_f, _ in PAIRS:
        for q_m, q_f, _ in PAIRS:
            if p_m != q_m:
                out.append((q_m, p_m, p_f, q_f))
                out.append((q_f, p_f, p_m, q_m))
    return out


def _scores(E, words, cat_of):
    """Top-1 neighbour accuracy (same category) and analogy accuracy with the rows of E
    (named by ``words``) as the only candidates, and the chance level of each."""
    index = {w: i for i, w in enumerate(words)}
    sizes = {c: sum(1 for w in words if cat_of.get(w) == c) for c in set(cat_of.values())}
    hits, chance = [], []
    for w, c in cat_of.items():
        (nn_idx,), _ = nearest_neighbors(E, index[w], k=1)
        hits.append(cat_of.get(words[nn_idx]) == c)
        chance.append((sizes[c] - 1) / (len(words) - 1))
    questions = analogy_questions()
    correct = 0
    for a, b, c, d in questions:
        (answer,), _ = analogy(E, index[a], index[b], index[c], k=1)
        correct += words[answer] == d
    return {"neighbor_acc": float(np.mean(hits)), "neighbor_chance": float(np.mean(chance)),
            "analogy_acc": correct / len(questions), "analogy_chance": 1 / (len(words) - 3),
            "n_questions": len(questions)}


def evaluate(vectors, tok, categories):
    """Scores with two candidate sets: ``all``, every word of the vocabulary (special tokens
    aside), and ``key``, only the words of the answer key (neighbours among the 48 category
    words, analogies among the 24 person words). A one-table model ranks a word's context
    words (king -> throne) above words with the same contexts (king -> queen), which the
    ``key`` set leaves out; see the module docstring."""
    vocab = tok.get_vocab()
    words = [w for w in vocab if w not in tok.special_tokens.values()]
    cat_of = {w: c for c, ws in categories.items() for w in ws}
    out = {"all": _scores(vectors[[vocab[w] for w in words]], words, cat_of)}
    key_words = [w for ws in categories.values() for w in ws]
    key = _scores(vectors[[vocab[w] for w in key_words]], key_words, cat_of)
    persons = list(categories["person"])
    analogies = _scores(vectors[[vocab[w] for w in persons]], persons,
                        {w: "person" for w in persons})
    key.update({k: v for k, v in analogies.items() if k.startswith("analogy")})
    out["key"] = key
    return out


def report(r, say):
    for cand, label in (("all", "whole vocabulary"), ("key", "answer-key words")):
        q = r[cand]
        say(f"  among the {label}: neighbours {q['neighbor_acc']:.2f} (chance "
            f"{q['neighbor_chance']:.2f}), analogies {q['analogy_acc']:.2f} of "
            f"{q['n_questions']} (chance {q['analogy_chance']:.3f})")


def batches(centers, contexts, batch_size, epochs, rng):
    for _ in range(epochs):
        order = rng.permutation(len(centers))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            yield centers[idx], contexts[idx]


def train_cosine(centers, contexts, sampler, V, args, negatives=True):
    """Seed 000's model and loss; negatives=False is the seed's y = +1 only (collapses)."""
    model = Word2Vec(Word2VecConfig(V, args.dim), generator=Generator(args.seed))
    opt = optim.Adam(model.named_parameters(), lr=args.cos_lr)
    rng = np.random.default_rng(args.seed)
    K = args.cos_negatives if negatives else 0
    for c, o in batches(centers, contexts, args.batch_size, args.epochs, rng):
        neg = sampler.sample((len(c), K)).reshape(-1)                        # (N*K,)
        ctx = np.concatenate([c, np.repeat(c, K)])
        tgt = np.concatenate([o, neg])
        y = np.concatenate([np.ones(len(c)), -np.ones(len(neg))])
        loss = model.loss(ctx, tgt, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, float(loss.item())


def train_sgns(centers, contexts, sampler, V, args):
    model = SkipGramNegativeSampling(Word2VecConfig(V, args.dim),
                                     generator=Generator(args.seed))
    opt = optim.Adam(model.named_parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    for c, o in batches(centers, contexts, args.batch_size, args.epochs, rng):
        loss = model(c, o, sampler.sample((len(c), args.negatives)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, float(loss.item())


def pair_cosines(vectors, tok):
    """cos(king, queen) and cos(king, bread): related vs unrelated words."""
    v = {w: vectors[tok.token_to_id(w)] for w in ("king", "queen", "bread")}
    return {"cos(king,queen)": cosine_similarity(v["king"], v["queen"]),
            "cos(king,bread)": cosine_similarity(v["king"], v["bread"])}


def mean_pairwise_cosine(vectors, ids):
    sim = cosine_similarity(vectors[ids])
    n = len(ids)
    return float((sim.sum() - np.trace(sim)) / (n * (n - 1)))


def skipgram_data(sentences, window, tok):
    """(centers, contexts, counts): pairs within each sentence, and the word counts."""
    centers, contexts, all_ids = [], [], []
    for s in sentences:
        ids = tok.encode(s)
        c, o = skipgram_pairs(ids, window)
        centers.append(c)
        contexts.append(o)
        all_ids.extend(ids)
    counts = np.bincount(np.array(all_ids), minlength=tok.vocab_size)
    return np.concatenate(centers), np.concatenate(contexts), counts


def stdlib_neighbours(args, say):
    """SGNS on a slice of the built-in corpus; prints neighbours of a few words."""
    text = default_corpus(max_chars=args.stdlib_chars)
    sentences = [s for s in text.lower().replace("\n", " ").split(". ") if s]
    tok = WordTokenizer.from_corpus(sentences, min_freq=5, pattern=r"[a-z]+")
    centers, contexts, counts = skipgram_data(sentences, args.window, tok)
    counts[:len(tok.special_tokens)] = 0
    keep = (centers >= len(tok.special_tokens)) & (contexts >= len(tok.special_tokens))
    sampler = NegativeSampler(counts, rng=np.random.default_rng(args.seed))
    model, _ = train_sgns(centers[keep], contexts[keep], sampler, tok.vocab_size, args)
    E = model.word_vectors()
    out = {}
    for w in ("file", "list", "string", "error", "true", "thread"):
        if w in tok.get_vocab():
            idx, _ = nearest_neighbors(E, w, k=5, vocab=tok)
            out[w] = [tok.id_to_token(int(i)) for i in idx]
            say(f"  {w:8s} -> {', '.join(out[w])}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sentences", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--negatives", type=int, default=5, help="SGNS: K negatives per pair")
    p.add_argument("--lr", type=float, default=0.01, help="SGNS: Adam's learning rate")
    p.add_argument("--cos-negatives", type=int, default=2,
                   help="cosine model: negatives (y = -1) per positive pair")
    p.add_argument("--cos-lr", type=float, default=0.03)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--collapse", action="store_true",
                   help="also train the cosine model with y = +1 only (the seed's code)")
    p.add_argument("--stdlib", action="store_true", help="also train on the built-in corpus")
    p.add_argument("--stdlib-chars", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.sentences, args.epochs = min(args.sentences, 3000), min(args.epochs, 4)
        args.stdlib_chars = min(args.stdlib_chars, 100_000)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()

    sentences, categories = royal_corpus(args.sentences, args.seed)
    tok = WordTokenizer.from_corpus(sentences)
    centers, contexts, counts = skipgram_data(sentences, args.window, tok)
    V = tok.vocab_size
    sampler = NegativeSampler(counts, power=0.75, rng=np.random.default_rng(args.seed + 1))
    say(f"corpus: {len(sentences)} sentences, vocab {V}, {len(centers):,} skip-gram pairs")
    results = {"vocab_size": V, "pairs": len(centers)}

    cos_model, cos_loss = train_cosine(centers, contexts, sampler, V, args)
    results["cosine"] = evaluate(cos_model.word_vectors(), tok, categories)
    sg_model, sg_loss = train_sgns(centers, contexts, sampler, V, args)
    results["sgns"] = evaluate(sg_model.word_vectors(), tok, categories)
    word_ids = [tok.token_to_id(w) for ws in categories.values() for w in ws]
    for name, model, loss in (("cosine", cos_model, cos_loss), ("sgns", sg_model, sg_loss)):
        r = results[name]
        r["final_loss"] = loss
        r["mean_cosine"] = mean_pairwise_cosine(model.word_vectors(), word_ids)
        r.update(pair_cosines(model.word_vectors(), tok))
        say(f"{name}: final loss {loss:.3f}, mean cosine between words {r['mean_cosine']:.2f}"
            f", cos(king, queen) {r['cos(king,queen)']:.2f}, cos(king, bread) "
            f"{r['cos(king,bread)']:.2f}")
        report(r, say)
    E = sg_model.word_vectors()
    (best,), _ = analogy(E, "king", "man", "woman", vocab=tok)
    results["king-man+woman"] = tok.id_to_token(int(best))
    idx, _ = nearest_neighbors(E, "king", k=4, vocab=tok)
    say(f"sgns: king - man + woman = {results['king-man+woman']}; neighbours of king: "
        f"{', '.join(tok.id_to_token(int(i)) for i in idx)}")
    if args.collapse:
        bad, _ = train_cosine(centers, contexts, sampler, V, args, negatives=False)
        r = results["positives_only"] = evaluate(bad.word_vectors(), tok, categories)
        r["mean_cosine"] = mean_pairwise_cosine(bad.word_vectors(), word_ids)
        r.update(pair_cosines(bad.word_vectors(), tok))
        say(f"cosine model with y = +1 only: mean cosine between words {r['mean_cosine']:.2f}"
            f" (collapse), cos(king, queen) {r['cos(king,queen)']:.3f}, cos(king, bread) "
            f"{r['cos(king,bread)']:.3f}")
        report(r, say)
    if args.stdlib:
        say("SGNS on the built-in corpus, nearest neighbours:")
        results["stdlib_neighbors"] = stdlib_neighbours(args, say)
    results["seconds"] = time.time() - t0
    say(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
