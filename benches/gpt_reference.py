"""PyTorch reference for `cargo bench --features bench --bench gpt`: the drum GPT's `small` preset, the same
architecture and training step, on the same synthetic batch (16 windows of 256 tokens, a
vocabulary of 1,400), so that the two speeds compare as a ratio measured side by side.

    python3 benches/gpt_reference.py --threads 2 --steps 20

Architecture, as crates/gpt/src/model.rs: token, position, step-in-bar (65) and phrase
(bar mod 4, 8, 16) embeddings summed; pre-norm blocks of causal self-attention (one qkv
projection, biases) and a GELU (tanh) feed-forward of 4x width; a final layer norm; the
output layer tied to the token embedding. AdamW (lr 3e-3, betas 0.9/0.99, eps 1e-8, weight
decay 0.1 on matrices and the token embedding only).
"""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, D, LAYERS, HEADS, CONTEXT, SLOTS = 1400, 128, 4, 4, 256, 65


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.fc = nn.Linear(D, 4 * D)
        self.out = nn.Linear(4 * D, D)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        shape = (b, t, HEADS, D // HEADS)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(D // HEADS)
        attn = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Embedding(CONTEXT, D)
        self.slot = nn.Embedding(SLOTS, D)
        self.phrase = nn.ModuleList(nn.Embedding(n, D) for n in (4, 8, 16))
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D)

    def forward(self, ids, slot, bar):
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t)) + self.slot(slot)
        for table, n in zip(self.phrase, (4, 8, 16)):
            x = x + table(bar % n)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x) @ self.tok.weight.t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    n = 16 * 256
    ids = torch.tensor([(i * 7919 % 1399 + 1) for i in range(n)]).view(16, 256)
    slot = torch.tensor([i % 17 for i in range(n)]).view(16, 256)
    bar = torch.tensor([(i % 256) // 17 for i in range(n)]).view(16, 256)
    model = Gpt()
    # As the Rust optimiser: the blocks' matrices and the token embedding decay.
    decays = lambda name, p: name == "tok.weight" or (name.startswith("blocks") and p.dim() == 2)
    decay = [p for name, p in model.named_parameters() if decays(name, p)]
    rest = [p for name, p in model.named_parameters() if not decays(name, p)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=3e-3, betas=(0.9, 0.99), eps=1e-8,
    )

    def step():
        logits = model(ids[:, :-1], slot[:, :-1], bar[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    print(f"pytorch {torch.__version__}, {args.threads} threads: "
          f"{args.steps * 16 * 256 / seconds:.0f} tokens/s ({args.steps} steps of 16x256 in {seconds:.2f} s)")


if __name__ == "__main__":
    main()
