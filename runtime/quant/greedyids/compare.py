"""Greedy ids of modelc against llama.cpp (bench/llamacpp/run.mjs: F32 KV
cache, no flash attention, which would round Q to F16) on the same GGUF
files, for six prompts: how many of the first tokens agree, and modelc's
logit margin where they first differ.

modelc's side is the quantised reference (greedyids; GREEDY_FLAGS=--int for
its integer path) or, with GREEDY set, the compiled package the file's shape
selects (bench/llamacpp/greedy: the code `generate --temperature 0` runs;
GODEBUG=cpu.avx512f=off and the purego tag pick its other kernel paths).
The prompts' ids always come from greedyids (the GGUF's tokenizer, BOS first).

Usage: GREEDYIDS=/tmp/greedyids RUNMJS=bench/llamacpp/run.mjs [GREEDY=/tmp/greedy] [GREEDY_FLAGS=--int] compare.py A.gguf ...
"""
import json, os, subprocess, sys

# The prompts of the comparison (logitdiff.py uses them too).
PROMPTS = ["", "ROMEO:", "First Citizen:\nBefore we proceed", "KING HENRY:\nWhat say you", "To be, or not", "My lord, the"]


def run(args, **kw):
    """Runs args and returns the JSON of the last line it prints."""
    return json.loads(subprocess.run(args, capture_output=True, check=True, text=True, **kw).stdout.strip().splitlines()[-1])


def main():
    greedyids, runmjs = os.environ["GREEDYIDS"], os.environ["RUNMJS"]
    compiled = os.environ.get("GREEDY")
    extra = os.environ.get("GREEDY_FLAGS", "").split()
    for m in sys.argv[1:]:
        agreed = 0
        for p in PROMPTS:
            prompt_args = ["--prompt", p] if p else []
            # Without a prompt: 64 tokens from BOS; with one: the token sampled
            # after it and 64 more, as run.mjs reports them.
            ours = run([greedyids, "--model", m, "--steps", "64"] + extra + prompt_args)
            path = "greedyids " + " ".join(extra)
            if compiled:
                c = run([compiled, "--model", m, "--steps", str(len(ours["prompt"]) + 64 - (0 if p else 1))] + prompt_args)
                ours["ids"], ours["margins"], path = c["ids"], c["margins"], f"{c['model']} ({c['kernels']})"
            largs = ["node", runmjs, "--model", m, "--steps", "64", "--kv", "f32", "--fa", "off"]
            if p:
                largs += ["--prompt-ids", ",".join(map(str, ours["prompt"]))]
            theirs = run(largs)
            a, b = ours["ids"], theirs["ids"]
            n = min(len(a), len(b))
            agree = next((i for i in range(n) if a[i] != b[i]), n)
            agreed += agree == n
            note = "" if agree == n else f" (first difference at {agree}: margin {ours['margins'][agree]:.4f})"
            print(f"{m.split('/')[-1]:16s} {path:28s} prompt {p[:20]!r:24s} {agree}/{n} agree{note}")
        print(f"{m.split('/')[-1]:16s} {agreed} of {len(PROMPTS)} prompts agree on every token")


if __name__ == "__main__":
    main()
