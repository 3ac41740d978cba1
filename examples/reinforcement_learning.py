"""Reinforcement learning (seed 000, 3.3): REINFORCE fine-tuning a language model, and
tabular Q-learning on a grid.

    python examples/reinforcement_learning.py [--quick] [--rl-steps 80] [--target e]

(a) Policy gradient. A character-level LSTM language model (tinygrad_llm/models/lstm.py) is
    pre-trained on a slice of the built-in corpus, then fine-tuned as a policy: from a prompt
    (8 characters of held-out text) it samples a continuation of T characters, and the reward
    (3.3.1: the environment and reward function) is the share of the target character in
    it, minus a KL penalty that keeps the text close to the pre-trained model pi_ref:

        R = (1/T) #{t : a_t = target} - beta sum_t (log pi(a_t | s_t) - log pi_ref(a_t | s_t))

    The update is REINFORCE with a baseline (``models.rl.reinforce_loss``):

        L = -(1/B) sum_b (R_b - b) sum_t log pi(a_t^b | s_t^b),  b = mean of the batch's R

    whose gradient is an unbiased estimate of -grad E[R]. Reported: the mean share of the
    target character in fresh samples before and after (3.3.4: evaluation).

(b) Q-learning on Sutton & Barto's cliff walk (``models.rl.CliffWalk``): 4 x 8 cells, start
    and goal at the two bottom corners, the cliff between them. Epsilon-greedy episodes and

        Q(s, a) <- Q(s, a) + alpha (r + gamma max_a' Q(s', a') - Q(s, a))

    then the greedy policy argmax_a Q(s, a) is walked from the start: it should reach the goal
    by the shortest path (9 steps, return -9).
"""
import argparse
import contextlib
import time

import numba
import numpy as np

from tinygrad_llm import optim
from tinygrad_llm.autograd import no_grad
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import CharTokenizer, LMWindowDataset, default_corpus
from tinygrad_llm.models.lstm import LSTMConfig, LSTMLanguageModel
from tinygrad_llm.models.rl import CliffWalk, greedy_rollout, q_learning, reinforce_loss


def pretrain(args, say):
    """A character LSTM on the built-in corpus; returns (model, tokenizer, held-out ids)."""
    text = default_corpus(max_chars=args.chars)
    cut = int(0.9 * len(text))
    tok = CharTokenizer.from_corpus(text[:cut])
    ids = np.array(tok.encode(text), dtype=np.int64)
    train = LMWindowDataset(ids[:cut], 32)
    model = LSTMLanguageModel(LSTMConfig(tok.vocab_size, n_embd=32, hidden_size=args.hidden),
                              generator=Generator(args.seed))
    opt = optim.Adam(model.named_parameters(), lr=5e-3)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.pretrain_steps):
        _, loss = model(*train.random_batch(32, rng))
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    say(f"pre-trained {args.pretrain_steps} steps, train loss {loss.item():.3f}")
    return model, tok, ids[cut:]


@contextlib.contextmanager
def numba_threads(n):
    """Run numba kernels on n threads inside the block (this thread only)."""
    saved = numba.get_num_threads()
    numba.set_num_threads(min(n, saved))
    try:
        yield
    finally:
        numba.set_num_threads(saved)


def sample_batch(model, prompts, length, rng):
    """Continue each prompt (B, P) by ``length`` sampled tokens -> (B, P + length).

    One token per LSTM call is too little work to split over threads: on a busy 2-core
    machine the fused LSTM step took ~15 ms on 2 numba threads and ~0.4 ms on one."""
    with numba_threads(1):
        return model.generate(prompts, length, temperature=1.0, generator=rng)


def sequence_log_probs(model, seqs, P):
    """sum_t log pi(a_t | s_t) over the generated tokens (positions P..), a (B,) tensor."""
    lp = model.log_probs(seqs[:, :-1], seqs[:, 1:])                      # (B, P + T - 1)
    return lp[:, P - 1:].sum(1)                                          # (B,)


def target_share(seqs, P, target_id):
    return (seqs[:, P:] == target_id).mean(1)                            # (B,)


def policy_gradient(args, say):
    model, tok, heldout = pretrain(args, say)
    ref = LSTMLanguageModel(model.config)
    ref.load_state_dict(model.state_dict())                              # frozen pi_ref
    ref.eval()
    target = tok.token_to_id(args.target)
    rng = np.random.default_rng(args.seed + 1)
    P, T, B = 8, args.length, args.batch_size

    def prompts():
        starts = rng.integers(0, len(heldout) - P, size=B)
        return heldout[starts[:, None] + np.arange(P)]                   # (B, P)

    def evaluate(n=4):
        with no_grad():
            return float(np.mean([target_share(sample_batch(model, prompts(), T, rng), P,
                                               target).mean() for _ in range(n)]))

    before = evaluate()
    say(f"REINFORCE: reward = share of {args.target!r} in {T} sampled characters "
        f"(KL coefficient {args.kl_coef}); before: {before:.3f}")
    opt = optim.Adam(model.named_parameters(), lr=args.rl_lr)
    history = []
    for it in range(1, args.rl_steps + 1):
        seqs = sample_batch(model, prompts(), T, rng)                    # (B, P + T)
        logp = sequence_log_probs(model, seqs, P)                        # (B,)
        with no_grad():
            logp_ref = sequence_log_probs(ref, seqs, P).numpy()
        share = target_share(seqs, P, target)
        reward = share - args.kl_coef * (logp.detach().numpy() - logp_ref)
        # the log-probs as a (B, 1) "sequence" whose return is the whole reward
        loss = reinforce_loss(logp.reshape(B, 1), reward, baseline=reward.mean())
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(float(share.mean()))
        if it % 20 == 0:
            say(f"  step {it:3d}  share of {args.target!r} {share.mean():.3f}  "
                f"reward {reward.mean():.3f}")
    after = evaluate()
    with no_grad():
        sample = sample_batch(model, prompts()[:1], 60, rng)[0]
    say(f"after: {after:.3f}; sample: {tok.decode(sample.tolist())!r}")
    return {"share_before": before, "share_after": after, "history": history,
            "sample": tok.decode(sample.tolist())}


def cliff_q_learning(args, say):
    env = CliffWalk(4, 8)
    Q, returns = q_learning(env, args.episodes, alpha=0.5, gamma=1.0, epsilon=0.1,
                            rng=np.random.default_rng(args.seed))
    path, total, reached = greedy_rollout(env, Q)
    say(f"Q-learning: {args.episodes} episodes; mean return of the first 20 "
        f"{np.mean(returns[:20]):.1f}, of the last 20 {np.mean(returns[-20:]):.1f}; greedy "
        f"policy: {'reaches' if reached else 'misses'} the goal in {len(path) - 1} steps "
        f"(shortest {env.optimal_steps()}), return {total:.0f}")
    return {"first_returns": float(np.mean(returns[:20])),
            "last_returns": float(np.mean(returns[-20:])), "greedy_return": total,
            "greedy_steps": len(path) - 1, "reached_goal": reached,
            "optimal_steps": env.optimal_steps()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--chars", type=int, default=200_000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--pretrain-steps", type=int, default=400)
    p.add_argument("--rl-steps", type=int, default=100)
    p.add_argument("--rl-lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--length", type=int, default=24, help="characters per sampled episode")
    p.add_argument("--target", default="e", help="the character the reward counts")
    p.add_argument("--kl-coef", type=float, default=0.01)
    p.add_argument("--episodes", type=int, default=300, help="Q-learning episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.chars, args.hidden = min(args.chars, 50_000), min(args.hidden, 64)
        args.pretrain_steps, args.rl_steps = min(args.pretrain_steps, 150), min(args.rl_steps,
                                                                                40)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()
    results = {"q_learning": cliff_q_learning(args, say)}
    results["reinforce"] = policy_gradient(args, say)
    results["seconds"] = time.time() - t0
    say(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
