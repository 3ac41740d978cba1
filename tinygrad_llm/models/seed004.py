"""Seed 004's models: its two formulas, implemented literally, and its PyTorch code.

Shapes: B batch, T time (tokens), V vocabulary, E embedding size, H hidden size, Y the
number of words a label is written as.

1. Pre-training (seed 004, 3.1.4), the autoregressive formula

       P(w_{t+1} | w_1, ..., w_t) = softmax(W_e[w_{t+1}] + sum_{i=1}^{t} W_h[w_i])

   How we read it. A softmax turns one score per candidate into a distribution over the
   candidates, and the left-hand side is a distribution over the next word w_{t+1}, so the
   softmax runs over the V candidates v for w_{t+1} and its argument must be ONE number per
   candidate: z_v = W_e[v] + (sum_i W_h[w_i])[v]. Hence

       W_e  shape (V,):    W_e[v] is candidate v's own score (a learned log-frequency);
       W_h  shape (V, V):  row W_h[w_i] holds the votes that context word w_i casts for every
                           next word;
       z = W_e + sum_{i<=t} W_h[w_i]  (V,),     P(w_{t+1} = v | w_<=t) = softmax(z)_v.

   It is a log-linear (maximum-entropy) model over the bag of previous words: order and
   distance are ignored, and the NLL is convex in (W_e, W_h), so it trains reliably from
   zeros. What is ambiguous, and what we did not choose:
   - The seed calls W_e a "word embedding matrix" and W_h "hidden-layer weights". If both
     were (V, D) tables of D-vectors, W_e[w_{t+1}] + sum_i W_h[w_i] would be a D-vector and
     a softmax over it would be a distribution over the D coordinates, not over words (and
     it would depend on the candidate w_{t+1} it is supposed to score). Making it a
     distribution over words needs a product (z_v = W_e[v] . sum_i W_h[w_i], the usual
     factorized language model, which the formula does not write) or D = V, which is our
     reading with W_e's rows reduced to the one entry the softmax uses.
   - With scalar tables W_e, W_h (V,), the context term sum_i W_h[w_i] would be the same for
     every candidate and cancel in the softmax: a unigram model that ignores the context.
   - W_e[w_{t+1}] indexes the table by the word being predicted, which is what "the score
     of candidate v" means once the softmax runs over candidates.

2. Fine-tuning (seed 004, 3.2.4), the label-conditioned formula

       P(w_1, ..., w_n | y) = prod_{i=1}^{n} softmax(W_e[w_i] + sum_{j=1}^{y} W_h[w_j])

   How we read it. The same W_e (V,) and W_h (V, V), the softmax again over the V
   candidates for w_i, and the factor for w_i read at w_i. The sum runs over j = 1..y and
   indexes W_h with words: step 4 of the seed's procedure (3.2.3, "convert the label into a
   word sequence") turns the label into words, and we read w_1..w_y in the sum as those
   label words (y = how many there are; "positive" is one word). Then

       z(y) = W_e + sum_{j<=Y} W_h[label word j]   (V,),   the same for every position i,
       log P(text | y) = sum_i log softmax(z(y))_{w_i},

   a class-conditional bag of words (naive Bayes with a shared log-linear parametrization),
   which also classifies: argmax_y log P(text | y) + log P(y). Rejected reading: taking
   w_1..w_y to be the text's own first y words (y an integer label) would put w_i inside
   the context that predicts it for i <= y, so the model could copy its answer.

3. The code of seed 004 (section 4): ``AutoRegressiveModel`` = Embedding(V, E) ->
   Linear(E, H) -> Linear(H, V), applied to each position on its own, trained with
   CrossEntropyLoss and Adam. With no recurrence and no nonlinearity it is a bigram model
   whose V x V logit table has rank <= min(E, H):  logits = W_out (W_hid E[x] + b_hid) + b_out.
   The seed's ``MultiLabelRegressionModel`` is the same code; it is trained on
   (label word, text word) pairs, so it learns P(text word | label), the neural twin of
   formula 2. Two fixes to the seed's code, both noted where they happen: its training
   method is named ``train``, which would shadow ``Module.train()`` (train/eval mode), so it
   is ``fit`` here; and CrossEntropyLoss wants the classes on axis 1, so (B, T, V) logits
   are flattened to (B*T, V) first.
"""
import numpy as np

from .. import functional as F
from .. import nn, optim
from ..autograd import no_grad
from ..creation import Generator
from ..generate import decode_loop
from ..nn import CrossEntropyLoss
from ..nn.module import Parameter
from ..tensor import Tensor


def _ids(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.int64))


class Seed004LM(nn.Module):
    """Formulas 1 and 2 of seed 004 with W_e (V,) and W_h (V, V), both starting at zero."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.W_e = Parameter(np.zeros(vocab_size, dtype=np.float32))             # (V,)
        self.W_h = Parameter(np.zeros((vocab_size, vocab_size), dtype=np.float32))  # (V, V)

    def context_logits(self, context):
        """z = W_e + sum_i W_h[w_i] for contexts (B, t) -> (B, V) (formula 1's argument)."""
        rows = F.embedding(_ids(context), self.W_h)   # W_h[w_i]: checked ids   (B, t, V)
        return self.W_e + rows.sum(1)                                             # (B, V)

    def forward(self, idx, targets=None):
        """idx (B, T) -> logits (B, T, V), row t scoring w_{t+1} from w_1..w_t (t counted
        from 1, so the context of row t is idx[:, :t+1]); with targets (B, T), also the mean
        cross-entropy (-100 ignored)."""
        idx = _ids(idx)
        B, T = idx.shape
        rows = F.embedding(idx, self.W_h)                                         # (B, T, V)
        prefix = Tensor(np.tril(np.ones((T, T), dtype=rows.dtype)))               # (T, T)
        logits = self.W_e + prefix @ rows     # sum_{i<=t} W_h[w_i], every t      (B, T, V)
        loss = None
        if targets is not None:
            t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
            loss = F.cross_entropy(logits.reshape(B * T, self.vocab_size),
                                   t.reshape(B * T).astype(np.int64))
        return logits, loss

    def label_logits(self, label_words):
        """Formula 2's argument z(y) = W_e + sum_{j<=Y} W_h[label word j]: (B, Y) -> (B, V)."""
        return self.context_logits(label_words)

    def conditional_log_prob(self, label_words, text, mask=None):
        """log P(text | y) = sum_i log softmax(z(y))[w_i] per row: label_words (B, Y), text
        (B, n) ids, mask (B, n) of 1 for real words (padding 0) -> (B,) tensor."""
        logp = F.log_softmax(self.label_logits(label_words), dim=-1)              # (B, V)
        text = np.asarray(text, dtype=np.int64)
        picked = logp.gather(1, Tensor(text))                                     # (B, n)
        if mask is not None:
            picked = picked * Tensor(np.asarray(mask, dtype=np.float32))
        return picked.sum(1)

    @no_grad()
    def generate(self, idx, max_new_tokens, **sampling):
        """Extend idx (B, T); the cache is the running sum of W_h rows (B, V)."""
        def step(new_ids, running):
            rows = self.W_h.data[np.asarray(new_ids)].sum(1)                      # (B, V)
            running = rows if running is None else running + rows
            return self.W_e.data + running, running
        return decode_loop(step, idx, max_new_tokens, **sampling)


class AutoRegressiveModel(nn.Module):
    """Seed 004's code: Embedding(V, E) -> Linear(E, H) -> Linear(H, V), per position."""

    def __init__(self, vocab_size, embedding_dim, hidden_dim, generator=None):
        super().__init__()
        g = generator if generator is not None else Generator(0)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, generator=g)
        self.hidden = nn.Linear(embedding_dim, hidden_dim, generator=g)
        self.out = nn.Linear(hidden_dim, vocab_size, generator=g)

    def forward(self, x):
        x = self.embedding(_ids(x))                                               # (..., E)
        x = self.hidden(x)                                                        # (..., H)
        return self.out(x)                                                        # (..., V)

    def fit(self, data, num_epochs, lr=1e-3):
        """The seed's training loop (named ``fit``: ``train`` is Module's mode switch).
        ``data``: a callable returning an iterable of (x, y) id batches for one epoch (a
        DataLoader works). Returns the mean loss of each epoch."""
        optimizer = optim.Adam(self.named_parameters(), lr=lr)
        criterion = CrossEntropyLoss()
        history = []
        for _ in range(num_epochs):
            total, count = 0.0, 0
            for x, y in data():
                y_hat = self(x)                                                   # (..., V)
                # classes must sit on axis 1: flatten (B, T, V) -> (B*T, V)
                loss = criterion(y_hat.reshape(-1, y_hat.shape[-1]),
                                 np.asarray(y, dtype=np.int64).reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, count = total + float(loss.item()), count + 1
            history.append(total / max(count, 1))
        return history


class MultiLabelRegressionModel(AutoRegressiveModel):
    """Seed 004's fine-tuning model: the same code, trained on (label word, text word)
    pairs, so softmax(model(label word)) is P(text word | label)."""
