"""nn.Module: registration and naming, modes, gradients, state_dict round trips and the
load_state_dict error messages, dtype/device moves, containers."""
import copy

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.fc = nn.Linear(3, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x * self.scale))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.blocks = [Block(), Block()]                     # a plain list of modules
        self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 4, bias=False)})
        self.register_buffer("table", tg.zeros(2))
        self.register_buffer("cache", tg.zeros(3), persistent=False)
        self.note = "not a parameter"

    def forward(self, ids):
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x)[..., :1] * tg.ones(3)
        return self.heads["a"](self.blocks[0].fc(x))


EXPECTED = ["embed.weight", "blocks.0.scale", "blocks.0.fc.weight", "blocks.0.fc.bias",
            "blocks.1.scale", "blocks.1.fc.weight", "blocks.1.fc.bias", "heads.a.weight",
            "heads.a.bias", "heads.b.weight"]


def test_named_parameters_in_insertion_order_with_dotted_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == EXPECTED
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert isinstance(net.blocks, nn.ModuleList) and len(net.blocks) == 2
    assert list(net.state_dict()) == ["table"] + EXPECTED  # own first (PyTorch); no cache
    assert [n for n, _ in net.named_buffers()] == ["table", "cache"]
    assert net.num_parameters() == 5 * 3 + 2 * (3 + 6 + 2) + 3 + 8
    names = [n for n, _ in net.named_modules()]
    assert names[:4] == ["", "embed", "blocks", "blocks.0"] and "heads.b" in names
    assert [type(m).__name__ for m in net.children()] == ["Embedding", "ModuleList",
                                                         "ModuleDict"]


def test_shared_parameter_is_listed_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_train_eval_flag_is_passed_down():
    net = Net()
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    x = tg.randn(4, 3)
    blk = net.blocks[0]
    np.testing.assert_array_equal(blk(x).data, blk.fc(x).data)  # dropout is the identity
    net.train()
    assert net.blocks[1].drop.training


def test_zero_grad_and_apply():
    net = Net()
    net(np.array([[0, 1], [2, 3]])).sum().backward()
    assert net.blocks[0].fc.weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 4


def test_state_dict_round_trip_shares_memory_like_torch():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert isinstance(sd["embed.weight"], tg.Tensor) and not sd["embed.weight"].requires_grad
    sd["embed.weight"][0, 0] = 123.0                # shares memory, as in PyTorch
    assert a.embed.weight.data[0, 0] == 123.0
    sd["embed.weight"].copy_(tg.zeros(*sd["embed.weight"].shape))
    assert not a.embed.weight.data.any()
    b.load_state_dict(a.state_dict())
    for (n1, t1), (n2, t2) in zip(a._state_items(), b._state_items()):
        assert n1 == n2
        np.testing.assert_array_equal(t1.data, t2.data)
    ids = np.array([[0, 4, 2]])
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(ids).data, b(ids).data)


def test_load_state_dict_errors_name_every_bad_key_and_load_nothing():
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    bad = dict(net.state_dict())
    del bad["blocks.1.fc.bias"]
    bad["extra.weight"] = np.zeros(2)
    bad["heads.a.weight"] = np.zeros((3, 2))
    bad["embed.weight"] = np.zeros_like(bad["embed.weight"])   # valid, but must not load
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(bad)
    msg = str(err.value)
    assert "Missing key(s): blocks.1.fc.bias" in msg
    assert "Unexpected key(s): extra.weight" in msg
    assert "heads.a.weight: checkpoint shape (3, 2), model shape (1, 2)" in msg
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    # strict=False tolerates missing / unexpected keys, but never a shape mismatch
    del bad["heads.a.weight"]
    missing, unexpected = net.load_state_dict(bad, strict=False)
    assert missing == ["blocks.1.fc.bias", "heads.a.weight"]
    assert unexpected == ["extra.weight"]
    np.testing.assert_array_equal(net.embed.weight.data, 0)


def test_load_state_dict_casts_dtype_and_keeps_parameter_objects():
    net = nn.Linear(3, 2)
    w = net.weight
    net.load_state_dict({"weight": np.ones((2, 3)), "bias": [1.0, 2.0]})
    assert net.weight is w and w.dtype == np.float32
    np.testing.assert_array_equal(w.data, 1)


def test_double_float_and_to():
    net = Net()
    p = net.blocks[0].fc.weight
    net.double()
    assert net.blocks[0].fc.weight is p and p.dtype == np.float64
    assert net.table.dtype == np.float64
    assert net.to("float32").embed.weight.dtype == np.float32
    assert net.to("cpu") is net
    assert net(np.array([[1, 2]])).dtype == np.float32


def test_containers():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = tg.randn(5, 3)
    ref = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).data, ref.data)
    assert len(seq) == 3 and len(seq[:2]) == 2
    ml = nn.ModuleList([nn.Linear(1, 1)]).append(nn.Linear(1, 2))
    assert [n for n, _ in ml.named_parameters()][-1] == "1.bias"
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    assert "x" in md and list(md.keys()) == ["x"]
    with pytest.raises(TypeError):
        ml.append("not a module")
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(seq)


def test_deepcopy_gives_independent_parameters():
    net = Net()
    clone = copy.deepcopy(net)
    assert [n for n, _ in clone.named_parameters()] == EXPECTED
    clone.embed.weight.data[...] = 0
    assert np.any(net.embed.weight.data != 0)


def test_setattr_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super"):
        Bad()
