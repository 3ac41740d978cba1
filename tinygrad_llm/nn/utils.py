"""torch.nn.utils's names: gradient clipping and flattening parameters into one vector.

    clip_grad_norm_(model.parameters(), max_norm=1.0)     formulas in optim/clip.py
    clip_grad_value_(model.parameters(), clip_value=0.5)
    vec = parameters_to_vector(model.parameters())        one 1-D Tensor, differentiable
    vector_to_parameters(vec, model.parameters())         copy it back (no graph)
"""
from ..optim import clip as _clip
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale all gradients by one factor so that their joint norm is at most ``max_norm``;
    return the norm before clipping (``foreach``, a speed option, is accepted and ignored)."""
    return _clip.clip_grad_norm_(parameters, max_norm, norm_type=norm_type,
                                 error_if_nonfinite=error_if_nonfinite)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    return _clip.clip_grad_value_(parameters, clip_value)


def _check_tensor(x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor for {what}, but got: {type(x).__name__}")


def parameters_to_vector(parameters):
    """The parameters flattened and joined into one 1-D Tensor (gradients flow back)."""
    from ..ops import cat
    flat = []
    for p in parameters:
        _check_tensor(p, "a parameter")
        flat.append(p.reshape(-1))
    return cat(flat, 0)


def vector_to_parameters(vec, parameters):
    """Copy the consecutive slices of the 1-D ``vec`` into the parameters' values (in place,
    outside the graph, as torch's ``param.data = ...``)."""
    _check_tensor(vec, "vec")
    if vec.ndim != 1:
        raise ValueError(f"vec must be a 1-D Tensor, got shape {tuple(vec.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.shape[0]:
        raise ValueError(f"vec has {vec.shape[0]} elements, the parameters {total}")
    start = 0
    for p in params:
        _check_tensor(p, "a parameter")
        n = p.numel()
        p.data = vec.data[start:start + n].reshape(p.shape).astype(p.dtype, copy=True)
        p._version[0] += 1
        start += n


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]
