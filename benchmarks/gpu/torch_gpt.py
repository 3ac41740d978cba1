"""The yardstick for the GPU table: GPT-2's architecture written in PyTorch with the parameter
names of tinygrad_llm's GPT, so that ``load_state_dict`` copies our weights one to one.

Shapes: B batch, T time, C channels, H heads, D head size (C / H), V vocab.

    x = wte[idx] + wpe[0..T-1]
    per block:  x = x + c_proj(sdpa(c_attn(ln_1(x)), causal))
                x = x + c_proj(gelu_tanh(c_fc(ln_2(x))))
    logits = ln_f(x) @ wte^T                                    (tied head)

Imported by bench_gpu.py only (torch is a benchmark baseline, never a library dependency).
"""


def build(torch, n_layer, n_head, n_embd, vocab_size, block_size, eps=1e-5):
    """A torch.nn.Module with the same parameter names and layouts as models/gpt.py's GPT."""
    nn = torch.nn
    F = torch.nn.functional

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)

        def forward(self, x):
            B, T, C = x.shape
            H, D = n_head, C // n_head
            qkv = self.c_attn(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
            y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))           # (B, T, C)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(n_embd, 4 * n_embd)
            self.c_proj = nn.Linear(4 * n_embd, n_embd)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
            self.attn = Attention()
            self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(vocab_size, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                h=nn.ModuleList([Block() for _ in range(n_layer)]),
                ln_f=nn.LayerNorm(n_embd, eps=eps),
            ))

        def forward(self, idx, targets):
            tr = self.transformer
            T = idx.shape[1]
            pos = torch.arange(T, device=idx.device)
            x = tr.wte(idx) + tr.wpe(pos)                                     # (B, T, C)
            for block in tr.h:
                x = block(x)
            logits = tr.ln_f(x) @ tr.wte.weight.T                             # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
            return logits, loss

    return GPT()
