#!/usr/bin/env python3
"""PyTorch eager baseline for modelc's training throughput figure.

The same architecture as modelc's llama family (RMSNorm, RoPE on adjacent
pairs, grouped-query attention, SwiGLU, tied or untied classifier), float32,
one AdamW step per batch with gradient clipping, on random tokens. Prints
tokens/s over the timed steps (after one warm-up step) and peak RSS.

  /usr/bin/python3 runtime/train/bench/torch_train.py --threads 1 --steps 3
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.w, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope(x, c, s):
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d, H, KV, ffn, eps):
        super().__init__()
        self.H, self.KV, self.hd = H, KV, d // H
        self.n1, self.n2 = RMSNorm(d, eps), RMSNorm(d, eps)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, KV * self.hd, bias=False)
        self.wv = nn.Linear(d, KV * self.hd, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.w1 = nn.Linear(d, ffn, bias=False)
        self.w3 = nn.Linear(d, ffn, bias=False)
        self.w2 = nn.Linear(ffn, d, bias=False)

    def forward(self, x, c, s, mask):
        B, T, d = x.shape
        h = self.n1(x)
        q = rope(self.wq(h).view(B, T, self.H, self.hd), c, s).transpose(1, 2)
        k = rope(self.wk(h).view(B, T, self.KV, self.hd), c, s).transpose(1, 2)
        v = self.wv(h).view(B, T, self.KV, self.hd).transpose(1, 2)
        if self.KV != self.H:
            k = k.repeat_interleave(self.H // self.KV, dim=1)
            v = v.repeat_interleave(self.H // self.KV, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)
        x = x + self.wo(o)
        h = self.n2(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.kv_heads, a.ffn, 1e-5) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, 1e-5)
        self.out = nn.Linear(a.dim, a.vocab, bias=False)
        self.out.weight = self.emb.weight  # tied, as the 15M shape is
        hd = a.dim // a.heads
        freqs = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(a.seq).float()[:, None] * freqs[None, :]
        self.register_buffer("c", torch.cos(ang)[None, :, None, :])
        self.register_buffer("s", torch.sin(ang)[None, :, None, :])
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1))
        for n, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.c, self.s, self.mask)
        logits = self.out(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dim", type=int, default=288)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=6)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    m = Model(a)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    other = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), foreach=False)
    tok = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
    x, y = tok[:, :-1].contiguous(), tok[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = m(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} threads {a.threads}: {a.batch * a.seq * a.steps / dt:.1f} tok/s "
          f"({dt / a.steps:.2f} s/step, batch {a.batch}x{a.seq}), loss {loss:.3f}, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
