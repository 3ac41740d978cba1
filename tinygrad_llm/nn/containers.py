"""The containers: Sequential and ModuleDict (PyTorch's), built on nn.Module; ModuleList lives
in module.py (a list of Modules assigned to an attribute becomes one)."""
from collections import OrderedDict

from .module import Module, ModuleList

__all__ = ["ModuleDict", "ModuleList", "Sequential"]


class Sequential(ModuleList):
    """Modules applied one after the other; children are named "0", "1", ... (or by the keys
    of an OrderedDict)."""

    def __init__(self, *modules):
        Module.__init__(self)
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                setattr(self, name, m)
        else:
            self.extend(modules)

    def _from_list(self, modules):
        return Sequential(*modules)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for name, m in items:
            self[name] = m

    def __setitem__(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict holds Modules, got {type(module).__name__}")
        setattr(self, str(name), module)

    def __getitem__(self, name):
        return self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); index it instead")
