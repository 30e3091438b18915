#!/usr/bin/env python3
"""PyTorch reference for modelc's training backward pass.

Reads input.json (tiny Llama-family models with their weights, written by
`go test ./runtime/generic -run TorchRef -torchref-write`), runs each case's
batch through an independent PyTorch implementation of the same model in
float64, and writes the loss and the gradient of every tensor to
expected.json, which runtime/generic's TestTorchRef compares against.

Run by hand with Debian's python3-torch:  python3 testdata/torchref/torchref.py
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, freqs):
    """Rotates the adjacent pairs (x[2i], x[2i+1]) of every head of x
    [B, T, H, hd] by the angle pos * freqs[i] (llama2.c's convention)."""
    T = x.shape[1]
    pos = torch.arange(T, dtype=torch.float64)
    ang = pos[:, None] * freqs[None, :]  # [T, hd/2]
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


def forward(spec, w, tokens, targets):
    d, H, KV = spec["dim"], spec["heads"], spec["kv_heads"]
    hd = d // H
    eps = spec["norm_eps"]
    B, T = tokens.shape
    causal = spec.get("objective", "causal") != "masked"
    freqs = 1.0 / (spec["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))

    x = w["token_embd.weight"][tokens]  # [B, T, d]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1) if causal else None
    for l in range(spec["layers"]):
        p = lambda k: w[f"blk.{l}.{k}.weight"]
        h = rmsnorm(x, p("attn_norm"), eps)
        q = (h @ p("attn_q").T).view(B, T, H, hd)
        k = (h @ p("attn_k").T).view(B, T, KV, hd)
        v = (h @ p("attn_v").T).view(B, T, KV, hd)
        q, k = rope(q, freqs), rope(k, freqs)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        # Query head i reads key/value head i // (H / KV).
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        if mask is not None:
            att = att + mask
        att = att.softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + o @ p("attn_output").T
        h = rmsnorm(x, p("ffn_norm"), eps)
        g = F.silu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)
        x = x + g @ p("ffn_down").T
    x = rmsnorm(x, w["output_norm.weight"], eps)
    cls = w["token_embd.weight"] if spec.get("tie_embeddings") else w["output.weight"]
    logits = x @ cls.T
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)


def main():
    with open(os.path.join(HERE, "input.json")) as f:
        cases = json.load(f)
    out = []
    for c in cases:
        spec = c["spec"]
        B, T = c["B"], c["T"]
        w = {}
        for name, vals in c["weights"].items():
            w[name] = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
        # Shape the matrices [out, in] as the layout says.
        d, kv, ffn, V = spec["dim"], spec["kv_heads"] * (spec["dim"] // spec["heads"]), spec["ffn_dim"], spec["vocab"]
        shapes = {"token_embd.weight": (V, d), "output.weight": (V, d)}
        for l in range(spec["layers"]):
            shapes.update({
                f"blk.{l}.attn_q.weight": (d, d), f"blk.{l}.attn_k.weight": (kv, d),
                f"blk.{l}.attn_v.weight": (kv, d), f"blk.{l}.attn_output.weight": (d, d),
                f"blk.{l}.ffn_gate.weight": (ffn, d), f"blk.{l}.ffn_up.weight": (ffn, d),
                f"blk.{l}.ffn_down.weight": (d, ffn),
            })
        leaves = dict(w)
        views = {n: (t.view(*shapes[n]) if n in shapes else t) for n, t in w.items()}
        tokens = torch.tensor(c["tokens"], dtype=torch.long).view(B, T)
        targets = torch.tensor(c["targets"], dtype=torch.long).view(B, T)
        loss = forward(spec, views, tokens, targets)
        loss.backward()
        out.append({
            "name": c["name"],
            "loss": loss.item(),
            "grads": {n: t.grad.tolist() for n, t in leaves.items()},
        })
        print(f"{c['name']}: loss {loss.item():.10f}", file=sys.stderr)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
