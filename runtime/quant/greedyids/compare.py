"""Greedy ids of modelc (greedyids) against llama.cpp (bench/llamacpp/run.mjs,
KV cache in F32) on the same GGUF files, for six prompts: how many of the
first tokens agree, and the logit margin where they first differ.

Usage: GREEDYIDS=/tmp/greedyids RUNMJS=bench/llamacpp/run.mjs [GREEDY_FLAGS=--int] compare.py A.gguf ...
"""
import json, subprocess, sys
import os
GREEDYIDS = os.environ["GREEDYIDS"]
RUNMJS = os.environ["RUNMJS"]
EXTRA = os.environ.get("GREEDY_FLAGS", "").split()
models = sys.argv[1:]
prompts = ["", "ROMEO:", "First Citizen:\nBefore we proceed", "KING HENRY:\nWhat say you", "To be, or not", "My lord, the"]
for m in models:
    for p in prompts:
        args = [GREEDYIDS, "--model", m, "--steps", "64"] + EXTRA + (["--prompt", p] if p else [])
        ours = json.loads(subprocess.run(args, capture_output=True, check=True, text=True).stdout)
        largs = ["node", RUNMJS, "--model", m, "--steps", "64", "--kv", "f32", "--fa", "off"]
        if p:
            largs += ["--prompt-ids", ",".join(map(str, ours["prompt"]))]
        theirs = json.loads(subprocess.run(largs, capture_output=True, check=True, text=True).stdout.strip().splitlines()[-1])
        a, b = ours["ids"], theirs["ids"]
        n = min(len(a), len(b))
        agree = next((i for i in range(n) if a[i] != b[i]), n)
        note = "" if agree == n else f" (first difference at {agree}: margin {ours['margins'][agree]:.4f})"
        print(f"{m.split('/')[-1]:16s} prompt {p[:20]!r:24s} {agree}/{n} agree{note}")
