"""A Keras-style front end on tinygrad_llm's modules, as the source documents use it:

    model = Sequential([
        layers.Embedding(input_dim=vocab_size, output_dim=64),
        layers.LSTM(128),
        layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, batch_size=32,
                        validation_data=(x_val, y_val))
    loss, accuracy = model.evaluate(x_test, y_test)
    probabilities = model.predict(x_test)

Layers are built lazily, like Keras: a Dense layer learns its input size from the first batch.
The losses are Keras's formulas on probabilities (they clip p to [1e-7, 1 - 1e-7] before the
log); everything underneath is ordinary tinygrad_llm modules, autograd and optimizers.
"""
import numpy as np

from . import functional as F
from . import nn
from .autograd import no_grad
from .creation import Generator
from .tensor import Tensor

EPSILON = 1e-7  # Keras's backend epsilon for clipping probabilities


def _activation(name, x):
    if name is None or name == "linear":
        return x
    if name == "relu":
        return x.relu()
    if name == "tanh":
        return x.tanh()
    if name == "sigmoid":
        return x.sigmoid()
    if name == "softmax":
        return F.softmax(x, -1)
    if name == "gelu":
        return F.gelu(x)
    raise ValueError(f"unknown activation {name!r}")


class _Layers:
    """Namespace mirroring keras.layers."""

    class Dense(nn.Module):
        """y = activation(x W + b); W is created at the first call from x's last size."""

        def __init__(self, units, activation=None, use_bias=True):
            super().__init__()
            self.units, self.activation, self.use_bias = units, activation, use_bias
            self.linear = None

        def build(self, in_features, generator):
            self.linear = nn.Linear(in_features, self.units, bias=self.use_bias,
                                    generator=generator)

        def forward(self, x):
            return _activation(self.activation, self.linear(x))

    class Embedding(nn.Module):
        """Token ids (B, T) -> vectors (B, T, output_dim)."""

        def __init__(self, input_dim, output_dim, mask_zero=False):
            super().__init__()
            if mask_zero:
                raise NotImplementedError(
                    "Embedding(mask_zero=True) is not supported: the LSTM reads every time "
                    "step. Pad on the left (Keras's pad_sequences default, padding='pre') so "
                    "that the last state comes after the real tokens.")
            self.input_dim, self.output_dim = input_dim, output_dim
            self.embedding = None

        def build(self, in_features, generator):
            self.embedding = nn.Embedding(self.input_dim, self.output_dim, generator=generator)

        def forward(self, x):
            return self.embedding(x)

    class LSTM(nn.Module):
        """(B, T, C) -> the last hidden state (B, units), or all states with
        return_sequences=True (B, T, units)."""

        def __init__(self, units, return_sequences=False):
            super().__init__()
            self.units, self.return_sequences = units, return_sequences
            self.lstm = None

        def build(self, in_features, generator):
            from .nn.rnn import LSTM
            self.lstm = LSTM(in_features, self.units, batch_first=True, generator=generator)

        def forward(self, x):
            out, (h, _) = self.lstm(x)                       # (B, T, H), (1, B, H)
            return out if self.return_sequences else h[0]

    class Dropout(nn.Module):
        def __init__(self, rate, seed=0):
            super().__init__()
            self.dropout = nn.Dropout(rate, generator=Generator(seed))

        def build(self, in_features, generator):
            pass

        def forward(self, x):
            return self.dropout(x)

    class GlobalAveragePooling1D(nn.Module):
        """(B, T, C) -> the mean over time (B, C)."""

        def build(self, in_features, generator):
            pass

        def forward(self, x):
            return x.mean(1)

    class Flatten(nn.Module):
        def build(self, in_features, generator):
            pass

        def forward(self, x):
            return x.reshape(x.shape[0], -1)


layers = _Layers


# ----- losses and metrics on probabilities (Keras's definitions) ------------------------------

def sparse_categorical_crossentropy(y_true, y_pred):
    """mean_i -log p_i[y_i], with p clipped to [eps, 1 - eps]."""
    p = y_pred.clamp(EPSILON, 1 - EPSILON)
    picked = p.gather(1, Tensor(np.asarray(y_true, dtype=np.int64).reshape(-1, 1)))
    return -picked.log().mean()


def categorical_crossentropy(y_true, y_pred):
    """mean_i -sum_c y_ic log p_ic (one-hot or soft targets)."""
    p = y_pred.clamp(EPSILON, 1 - EPSILON)
    return -(Tensor(np.asarray(y_true, dtype=p.dtype)) * p.log()).sum(-1).mean()


def binary_crossentropy(y_true, y_pred):
    """mean -(y log p + (1 - y) log(1 - p))."""
    p = y_pred.clamp(EPSILON, 1 - EPSILON)
    y = Tensor(np.asarray(y_true, dtype=p.dtype).reshape(p.shape))
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def mean_squared_error(y_true, y_pred):
    y = Tensor(np.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape))
    return ((y_pred - y) ** 2).mean()


LOSSES = {"sparse_categorical_crossentropy": sparse_categorical_crossentropy,
          "categorical_crossentropy": categorical_crossentropy,
          "binary_crossentropy": binary_crossentropy, "mse": mean_squared_error,
          "mean_squared_error": mean_squared_error}


def accuracy(y_true, y_pred):
    """Fraction of rows whose predicted class (argmax, or p > 0.5 for one output) is right."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        pred = (y_pred.reshape(-1) > 0.5).astype(np.int64)
    else:
        pred = y_pred.argmax(-1)
    if y_true.ndim == y_pred.ndim and y_true.ndim > 1 and y_true.shape[-1] > 1:
        y_true = y_true.argmax(-1)  # one-hot targets
    return float((pred == y_true.reshape(pred.shape)).mean())


class History:
    def __init__(self):
        self.history = {}

    def add(self, **values):
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)


class Sequential(nn.Module):
    """Layers applied in order, with Keras's compile / fit / evaluate / predict."""

    def __init__(self, layer_list=None, seed=0):
        super().__init__()
        self.layers = nn.ModuleList(list(layer_list or []))
        self.generator = Generator(seed)
        self.built = False
        self.optimizer = None

    def add(self, layer):
        self.layers.append(layer)

    def build(self, x):
        """Create every layer's weights from a sample batch (Keras builds on first use)."""
        h = Tensor(np.asarray(x[:1]))
        with no_grad():
            for layer in self.layers:
                layer.build(h.shape[-1], self.generator)
                h = layer(h)
        self.built = True

    def forward(self, x):
        h = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        for layer in self.layers:
            h = layer(h)
        return h

    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=(),
                learning_rate=None):
        self.loss_name = loss
        self.loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
        self.metric_names = list(metrics)
        self._optimizer_spec = (optimizer, learning_rate)

    def _make_optimizer(self):
        from . import optim
        spec, lr = self._optimizer_spec
        if not isinstance(spec, str):
            return spec
        # Keras's default learning rates: adam 1e-3, sgd 1e-2, rmsprop 1e-3
        if spec == "adam":
            return optim.Adam(self.named_parameters(), lr=lr or 1e-3, eps=1e-7)
        if spec == "adamw":
            return optim.AdamW(self.named_parameters(), lr=lr or 1e-3, eps=1e-7)
        if spec == "sgd":
            return optim.SGD(self.named_parameters(), lr=lr or 1e-2)
        raise ValueError(f"unknown optimizer {spec!r}: use 'adam', 'adamw', 'sgd' or an "
                         f"optimizer object")

    def _scores(self, x, y, batch_size):
        probs = self.predict(x, batch_size)
        loss = float(self.loss_fn(y, Tensor(probs)).item())
        scores = {"loss": loss}
        for name in self.metric_names:
            if name in ("accuracy", "acc"):
                scores["accuracy"] = accuracy(y, probs)
        return scores

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True,
            verbose=1, seed=0):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"fit: x has {len(x)} samples but y has {len(y)}")
        if not self.built:
            self.build(x)
        if self.optimizer is None:
            self.optimizer = self._make_optimizer()
        history = History()
        rng = np.random.default_rng(seed)
        for epoch in range(epochs):
            self.train()
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                loss = self.loss_fn(y[idx], self(x[idx]))
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            scores = self._scores(x, y, batch_size)
            if validation_data is not None:
                val = self._scores(*validation_data, batch_size)
                scores.update({f"val_{k}": v for k, v in val.items()})
            history.add(**scores)
            if verbose:
                line = " - ".join(f"{k}: {v:.4f}" for k, v in scores.items())
                print(f"Epoch {epoch + 1}/{epochs} - {line}")
        return history

    def evaluate(self, x, y, batch_size=32, verbose=0):
        """[loss, metric, ...] (just the loss when compiled without metrics)."""
        scores = self._scores(np.asarray(x), np.asarray(y), batch_size)
        values = [scores["loss"]] + [scores[m] for m in scores if m != "loss"]
        return values if len(values) > 1 else values[0]

    @no_grad()
    def predict(self, x, batch_size=32):
        x = np.asarray(x)
        if not self.built:
            self.build(x)
        self.eval()
        out = [self(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out, axis=0)
