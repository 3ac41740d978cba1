"""Reinforcement learning (seed 000, section 3.3): policy gradient and tabular Q-learning.

Shapes: B episodes (sequences) in a batch, T steps (tokens) per episode, S states, A actions.

Policy gradient, REINFORCE with a baseline (Williams, 1992). A policy pi_theta(a | s) (here a
language model: the state is the text so far, the action the next token) earns a return R per
episode. The gradient of the expected return J(theta) = E[R] is

    grad J = E[ (R - b) sum_t grad log pi_theta(a_t | s_t) ]

for any baseline b that does not depend on the actions (it lowers the variance, not the mean:
E[b grad log pi] = b grad sum_a pi = 0). Gradient ascent on J is descent on the surrogate loss

    L(theta) = -(1/B) sum_b (R_b - b) sum_t log pi_theta(a_t^b | s_t^b)        (reinforce_loss)

With rewards along the way, R is the discounted return from step t on,

    G_t = r_t + gamma r_{t+1} + gamma^2 r_{t+2} + ... = r_t + gamma G_{t+1}   (discounted_returns)

Q-learning (Watkins, 1989), for a table Q (S, A) of action values, after each step
(s, a) -> (r, s'):

    Q(s, a) <- Q(s, a) + alpha (r + gamma max_a' Q(s', a') - Q(s, a))        (q_learning_update)

(the max term is 0 when s' is terminal), acting epsilon-greedily: a random action with
probability epsilon, else argmax_a Q(s, a). Q converges to the optimal action values, so the
greedy policy argmax_a Q(s, a) is optimal.

``CliffWalk`` is Sutton & Barto's example 6.6: a grid, start at the bottom left, goal at the
bottom right, the cells between them a cliff (reward -100 and back to the start), every step
-1. The best path walks along the cliff's edge.
"""
import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor


def discounted_returns(rewards, gamma):
    """G_t = sum_{k>=0} gamma^k r_{t+k} along the last axis of ``rewards`` (..., T)."""
    r = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(r)
    running = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = r[..., t] + gamma * running          # G_t = r_t + gamma G_{t+1}
        out[..., t] = running
    return out


def reinforce_loss(log_probs, returns, baseline=0.0, mask=None):
    """-(1/B) sum_b sum_t (R_bt - b) log pi(a_t | s_t): the REINFORCE surrogate loss.

    log_probs (B, T) Tensor of log pi(a_t | s_t) for the actions taken; returns (B,) (one
    return per episode) or (B, T) (return from each step on); baseline a number, (B,) or
    (B, T); mask (B, T), 1 for real steps. The advantages R - b are constants.
    """
    xp = get_array_module(log_probs.data)
    adv = xp.asarray(returns, dtype=np.float64) - xp.asarray(baseline, dtype=np.float64)
    if adv.ndim == 1:
        adv = adv[:, None]                                          # (B, 1): every step
    adv = xp.broadcast_to(adv, log_probs.shape)
    if mask is not None:
        adv = adv * xp.asarray(mask)
    weights = Tensor(xp.asarray(adv, dtype=log_probs.dtype))
    return -(weights * log_probs).sum() / log_probs.shape[0]


def q_learning_update(Q, s, a, r, s_next, done, alpha, gamma):
    """One Q-learning step on the table Q (S, A), in place; returns the TD error."""
    target = r if done else r + gamma * np.max(Q[s_next])          # r + gamma max_a' Q(s', a')
    td_error = target - Q[s, a]
    Q[s, a] += alpha * td_error                                    # Q <- Q + alpha (target - Q)
    return td_error


def epsilon_greedy(Q, s, epsilon, rng):
    """A random action with probability epsilon, else argmax_a Q(s, a) (ties: random)."""
    if rng.random() < epsilon:
        return int(rng.integers(Q.shape[1]))
    best = np.flatnonzero(Q[s] == Q[s].max())
    return int(rng.choice(best))


class CliffWalk:
    """A rows x cols grid; states are row * cols + col; actions 0 up, 1 right, 2 down,
    3 left. reset() -> state; step(a) -> (state, reward, done)."""

    MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))

    def __init__(self, rows=4, cols=8):
        self.rows, self.cols = rows, cols
        self.start, self.goal = (rows - 1) * cols, rows * cols - 1
        self.n_states, self.n_actions = rows * cols, 4
        self.state = self.start

    def reset(self):
        self.state = self.start
        return self.state

    def is_cliff(self, s):
        return s // self.cols == self.rows - 1 and 0 < s % self.cols < self.cols - 1

    def step(self, action):
        r, c = divmod(self.state, self.cols)
        dr, dc = self.MOVES[action]
        r = min(max(r + dr, 0), self.rows - 1)                     # walls: stay inside
        c = min(max(c + dc, 0), self.cols - 1)
        self.state = r * self.cols + c
        if self.is_cliff(self.state):
            self.state = self.start
            return self.state, -100.0, False
        return self.state, -1.0, self.state == self.goal

    def optimal_steps(self):
        """Length of the shortest path: up, along the edge, down."""
        return self.cols + 1


def q_learning(env, episodes, alpha=0.5, gamma=1.0, epsilon=0.1, rng=None, max_steps=500):
    """Train a table Q (S, A) from zeros; returns (Q, return of each episode)."""
    rng = np.random.default_rng(0) if rng is None else rng
    Q = np.zeros((env.n_states, env.n_actions))
    history = []
    for _ in range(episodes):
        s, total = env.reset(), 0.0
        for _ in range(max_steps):
            a = epsilon_greedy(Q, s, epsilon, rng)
            s_next, r, done = env.step(a)
            q_learning_update(Q, s, a, r, s_next, done, alpha, gamma)
            s, total = s_next, total + r
            if done:
                break
        history.append(total)
    return Q, history


def greedy_rollout(env, Q, max_steps=100):
    """Follow argmax_a Q(s, a) from the start: (states visited, total reward, reached)."""
    s, total, path = env.reset(), 0.0, [env.start]
    for _ in range(max_steps):
        s, r, done = env.step(int(np.argmax(Q[s])))
        total += r
        path.append(s)
        if done:
            return path, total, True
    return path, total, False
