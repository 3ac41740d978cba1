"""Module and Parameter: the containers every layer is built from (PyTorch's nn.Module API).

A Module holds three kinds of named attributes, each kept in insertion order:

    _parameters   Parameter tensors (trained by the optimizer)
    _buffers      plain tensors that belong to the state but are not trained
    _modules      child Modules (a list of modules assigned as an attribute becomes a ModuleList)

Assigning ``self.w = Parameter(...)`` or ``self.fc = Linear(...)`` in ``__init__`` registers it
(``__setattr__`` below sorts it into the right dict). ``named_parameters()`` then walks the tree
the way PyTorch does: a module's own parameters in the order they were assigned, then each
child's, with dotted names (``layers.0.self_attn.in_proj_weight``). Because layers here create
their attributes in PyTorch's order, ``state_dict()`` keys and their order match PyTorch's, so
weights transfer one to one.

``training`` is a per-module flag set by ``train()`` / ``eval()`` on the whole subtree, never a
global: Dropout reads its own flag.
"""
from collections import OrderedDict

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable: requires_grad=True by default."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        array = data.data if isinstance(data, Tensor) else data
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        p = Parameter(self.data.copy(), requires_grad=self.requires_grad)
        memo[id(self)] = p
        return p


class Module:
    """Base class of every layer: subclasses set attributes in __init__ and define forward()."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration -----------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called; "
                                 f"call super().__init__() first in {type(self).__name__}")
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(m, Module) for m in value):
            value = ModuleList(value)  # so that its parameters are found and named name.0, ...
        if isinstance(value, Parameter):
            self._forget(name)
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            self._forget(name)
            d["_modules"][name] = value
        elif name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(a Parameter or None expected)")
            d["_parameters"][name] = None
        elif name in d["_buffers"]:
            d["_buffers"][name] = value
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            self.__dict__[store].pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent optional one, e.g. a bias)."""
        self._forget(name)
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is part of the module's state but not trained (e.g. a fixed table).
        Persistent buffers are saved in ``state_dict()``; non-persistent ones are not."""
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def register_module(self, name, module):
        setattr(self, name, module)

    add_module = register_module

    # ----- the forward pass ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----- walking the tree ------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, depth first, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m)
                        for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))  # reversed: pop them in insertion order

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs; a Parameter shared by two modules is listed once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only=False):
        """The number of scalar parameters (only those with requires_grad if asked)."""
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ----- modes and gradients ---------------------------------------------------------------
    def train(self, mode=True):
        """Set ``training`` on this module and every descendant (Dropout reads it)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's .grad (to None, as PyTorch 2 does, or to zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # ----- state -----------------------------------------------------------------------------
    def _state_items(self):
        """(name, tensor) of every parameter and persistent buffer, in state_dict order."""
        for mod_name, module in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield pre + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield pre + name, b

    def state_dict(self):
        """An ordered dict name -> Tensor, detached and sharing memory with the parameter or
        buffer (as PyTorch's: ``sd[name].copy_(x)`` changes the model; copy the values, e.g.
        ``{k: v.clone() for k, v in sd.items()}``, to keep a snapshot)."""
        return OrderedDict((name, t.detach()) for name, t in self._state_items())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters and buffers, by name.

        Every key is checked before anything is written, so a failed load changes nothing.
        Mis-shaped keys are always an error; missing and unexpected keys are errors when
        ``strict``. The error names every bad key (and both shapes). Values may be arrays,
        Tensors or anything ``numpy.asarray`` accepts; they are cast to the parameter's dtype
        and copied to its device. Returns (missing_keys, unexpected_keys).
        """
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays, mis_shaped = {}, []
        for name, t in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = value.data if isinstance(value, Tensor) else value
            if not backend.is_cupy_array(value):
                value = np.asarray(value)
            if tuple(value.shape) != tuple(t.shape):
                mis_shaped.append(f"{name}: checkpoint shape {tuple(value.shape)}, "
                                  f"model shape {tuple(t.shape)}")
            arrays[name] = value
        problems = []
        if strict and missing:
            problems.append("Missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            problems.append("Unexpected key(s): " + ", ".join(unexpected))
        if mis_shaped:
            problems.append("Size mismatch: " + "; ".join(mis_shaped))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} "
                               f"(nothing was loaded):\n\t" + "\n\t".join(problems))
        with no_grad():
            for name, value in arrays.items():
                t = own[name]
                xp = backend.get_array_module(t.data)
                new = xp.asarray(backend.to_device(value, t.device), dtype=t.dtype)
                t.data = new.copy() if new is value else new
                t._version[0] += 1
        return missing, unexpected

    # ----- device and dtype ------------------------------------------------------------------
    def _map_tensors(self, fn):
        """Replace every parameter's and buffer's array by fn(array), keeping the objects
        (optimizers hold references to the Parameters). Gradients are mapped too."""
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for t in store.values():
                    if t is None:
                        continue
                    t.data = fn(t.data)
                    if t.grad is not None:
                        t.grad = Tensor._wrap(fn(t.grad.data))
        return self

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or the keywords: moves every
        parameter and buffer, casts the floating ones. Returns self."""
        for a in args:
            if isinstance(a, backend.device) or (isinstance(a, str) and a.lower().split(
                    ":")[0] in ("cpu", "cuda", "gpu")):
                device = a
            else:
                dtype = a
        if device is not None:
            name = backend.check_device(device)
            self._map_tensors(lambda a: backend.to_device(a, name))
        if dtype is not None:
            d = np.dtype(dtype)
            self._map_tensors(lambda a: a.astype(d) if a.dtype.kind == "f" else a)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ----- printing --------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got "
                            f"{type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def _from_list(self, modules):
        return ModuleList(modules)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return self._from_list(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it instead")
