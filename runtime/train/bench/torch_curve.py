#!/usr/bin/env python3
"""Trains PyTorch (eager, float32) from the initial weights and on the
batches `curve prepare` wrote to DIR, with the same AdamW (decay on matrices
only), gradient clipping and warm-up + cosine schedule, and writes the loss
of every step to DIR/torch.json.

  /usr/bin/python3 runtime/train/bench/torch_curve.py DIR [--threads N]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, c, s):
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    spec, hp, steps = cfg["spec"], cfg["train"], cfg["steps"]
    init = np.fromfile(os.path.join(a.dir, "init.bin"), dtype="<f4")
    w = {}
    for t in cfg["tensors"]:
        n = int(np.prod(t["shape"]))
        w[t["name"]] = torch.nn.Parameter(torch.from_numpy(init[t["off"]:t["off"] + n].copy()).view(*t["shape"]))
    d, H, KV = spec["dim"], spec["heads"], spec["kv_heads"]
    hd, eps = d // H, spec["norm_eps"]
    B, T = hp["batch_size"], hp["seq_len"]
    freqs = 1.0 / (spec["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * freqs[None, :]
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    mask = torch.full((T, T), float("-inf")).triu(1)

    def loss_of(tokens, targets):
        x = w["token_embd.weight"][tokens]
        for l in range(spec["layers"]):
            p = lambda k: w[f"blk.{l}.{k}.weight"]
            h = rmsnorm(x, p("attn_norm"), eps)
            q = rope((h @ p("attn_q").T).view(B, T, H, hd), c, s).transpose(1, 2)
            k = rope((h @ p("attn_k").T).view(B, T, KV, hd), c, s).transpose(1, 2)
            v = (h @ p("attn_v").T).view(B, T, KV, hd).transpose(1, 2)
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
            att = ((q @ k.transpose(-2, -1)) / math.sqrt(hd) + mask).softmax(-1)
            x = x + (att @ v).transpose(1, 2).reshape(B, T, d) @ p("attn_output").T
            h = rmsnorm(x, p("ffn_norm"), eps)
            x = x + (F.silu(h @ p("ffn_gate").T) * (h @ p("ffn_up").T)) @ p("ffn_down").T
        x = rmsnorm(x, w["output_norm.weight"], eps)
        cls = w["token_embd.weight"] if spec.get("tie_embeddings") else w["output.weight"]
        return F.cross_entropy((x @ cls.T).view(B * T, -1), targets.view(-1), ignore_index=-1)

    decay = [p for p in w.values() if p.dim() >= 2]
    other = [p for p in w.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=1e-8)

    def lr_at(step):  # runtime/train.Schedule
        warm, total = hp["warmup_steps"], steps
        if step < warm:
            return hp["lr"] * (step + 1) / (warm + 1)
        if step >= total or total <= warm:
            return hp["min_lr"]
        r = (step - warm) / (total - warm)
        return hp["min_lr"] + 0.5 * (1 + math.cos(math.pi * r)) * (hp["lr"] - hp["min_lr"])

    batches = np.fromfile(os.path.join(a.dir, "batches.bin"), dtype="<i4").reshape(steps, 2, B, T)
    losses = []
    for step in range(steps):
        tokens = torch.from_numpy(batches[step, 0].astype(np.int64))
        targets = torch.from_numpy(batches[step, 1].astype(np.int64))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss = loss_of(tokens, targets)
        loss.backward()
        if hp["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(w.values()), hp["grad_clip"])
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step + 1} loss {loss.item():.4f}")
    with open(os.path.join(a.dir, "torch.json"), "w") as f:
        json.dump(losses, f)


if __name__ == "__main__":
    main()
