"""The Optimizer base class: parameter groups, zero_grad, and a state_dict keyed by names.

    opt = Adam(model.named_parameters(), lr=1e-3)      # names from the model (preferred)
    opt = Adam(model.parameters(), lr=1e-3)            # names "0", "1", ... by position
    opt = AdamW([{"params": decay, "weight_decay": 0.1},
                 {"params": no_decay, "weight_decay": 0.0}], lr=3e-4)   # parameter groups

Each group is a dict holding its hyperparameters (the defaults, overridden per group), its
``params`` (the Tensors) and their ``param_names``. ``state`` maps a parameter's name to its
per-parameter state (a step count and moment arrays), and can be indexed by the parameter too
(``opt.state[p]``); a parameter that never had a gradient has no state. ``state_dict()`` is
plain data: names, numbers, lists and NumPy arrays (copies), so a checkpoint can store it as
JSON plus arrays without pickle; ``load_state_dict`` checks the names and shapes before it
changes anything.

Subclasses implement ``step()``: inside ``no_grad`` they change each ``p.data`` in place and
bump ``p._version[0]``, so that autograd refuses a backward pass through values saved before
the update (PyTorch's "modified by an inplace operation" check).
"""
from ..autograd import enable_grad
from ..backend import get_array_module, to_device, to_numpy
from ..tensor import Tensor


def _is_array(x):
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, Tensor)


class ParamState(dict):
    """The per-parameter state, stored under each parameter's name; also looked up by the
    parameter itself, as PyTorch's ``optimizer.state[p]``."""

    def __init__(self, names_by_id):
        super().__init__()
        self._names = names_by_id                  # id(parameter) -> its name

    def _key(self, key):
        if isinstance(key, Tensor):
            if id(key) not in self._names:
                raise KeyError("this tensor is not one of the optimizer's parameters")
            return self._names[id(key)]
        return key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __setitem__(self, key, value):
        super().__setitem__(self._key(key), value)

    def __contains__(self, key):
        return isinstance(key, Tensor) and id(key) in self._names and super().__contains__(
            self._names[id(key)]) or (not isinstance(key, Tensor) and super().__contains__(key))

    def get(self, key, default=None):
        return super().get(self._key(key), default)

    def setdefault(self, key, default=None):
        return super().setdefault(self._key(key), default)

    def pop(self, key, *default):
        return super().pop(self._key(key), *default)


class Optimizer:
    """Base class; see the module docstring. ``defaults``: the hyperparameters and their
    default values, e.g. {"lr": 1e-3, "betas": (0.9, 0.999)}."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._names_by_id = {}
        self.state = ParamState(self._names_by_id)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors, (name, Tensor) pairs or dicts, but got a Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict {"params": tensors or (name, tensor) pairs, hyperparameter: value}."""
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(group).__name__}")
        group = dict(group)
        items = group["params"]
        items = [items] if isinstance(items, Tensor) else list(items)
        n_before = sum(len(g["params"]) for g in self.param_groups)
        names, params = [], []
        for k, item in enumerate(items):
            if isinstance(item, (tuple, list)) and len(item) == 2:
                name, p = item
            else:  # unnamed: the position among all of the optimizer's parameters
                name, p = str(n_before + k), item
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got "
                                f"{type(p).__name__} for parameter {name!r}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {name!r})")
            names.append(str(name))
            params.append(p)
        known = {n for g in self.param_groups for n in g["param_names"]}
        known_ids = {id(p) for g in self.param_groups for p in g["params"]}
        if len(set(names)) != len(names) or known & set(names):
            raise ValueError(f"parameter names must be unique across groups, got {names}")
        if known_ids & {id(p) for p in params} or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"], group["param_names"] = params, names
        self._names_by_id.update((id(p), n) for p, n in zip(params, names))
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's .grad: to None (the default, as PyTorch 2) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        raise NotImplementedError

    def _run_closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _params_with_grad(self, group):
        """(name, param, grad array) for each parameter of the group that has a gradient."""
        for name, p in zip(group["param_names"], group["params"]):
            if p.grad is not None:
                yield name, p, p.grad.data

    @staticmethod
    def _updated(p):
        """Record an in-place change of p's values (autograd's version check sees it)."""
        p._version[0] += 1

    # ----- state_dict ---------------------------------------------------------------------------
    def state_dict(self):
        """{"state": {name: {key: number or NumPy array}}, "param_groups": [{hyperparameters,
        "params": [names]}]}: JSON-able except for the arrays (which are copies)."""
        groups = []
        for group in self.param_groups:
            saved = {}
            for key, value in group.items():
                if key in ("params", "param_names"):
                    continue
                saved[key] = list(value) if isinstance(value, tuple) else value
            saved["params"] = list(group["param_names"])
            groups.append(saved)
        state = {}
        for name, entry in self.state.items():
            state[name] = {k: (to_numpy(v).copy() if _is_array(v) else v)
                           for k, v in entry.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (after JSON too: lists
        for tuples, arrays from any reader). Raises ValueError, changing nothing, when the
        groups, names or array shapes do not match this optimizer's parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, this "
                             f"optimizer has {len(self.param_groups)}")
        by_name = {}
        for k, (mine, saved) in enumerate(zip(self.param_groups, groups)):
            names = [str(n) for n in saved["params"]]
            if names != mine["param_names"]:
                missing = [n for n in mine["param_names"] if n not in names]
                extra = [n for n in names if n not in mine["param_names"]]
                raise ValueError(f"parameter group {k}: the loaded names do not match this "
                                 f"optimizer's (missing {missing}, unexpected {extra}, or a "
                                 f"different order)")
            by_name.update(zip(mine["param_names"], mine["params"]))
        state = state_dict["state"]
        for name, entry in state.items():
            if name not in by_name:
                raise ValueError(f"loaded state for unknown parameter {name!r}")
            for key, value in entry.items():
                if _is_array(value) and tuple(value.shape) != tuple(by_name[name].shape):
                    raise ValueError(f"state {name!r}.{key} has shape {tuple(value.shape)}, "
                                     f"but the parameter has shape "
                                     f"{tuple(by_name[name].shape)}")
        for mine, saved in zip(self.param_groups, groups):
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(self.defaults.get(key), tuple):
                    value = tuple(value)
                mine[key] = value
        self.state = ParamState(self._names_by_id)
        for name, entry in state.items():
            p = by_name[name]
            xp = get_array_module(p.data)
            self.state[name] = {
                k: (xp.array(to_device(v, p.device), dtype=p.dtype) if _is_array(v) else v)
                for k, v in entry.items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"
