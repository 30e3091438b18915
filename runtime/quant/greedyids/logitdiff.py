"""How far modelc's logits are from llama.cpp's on the same GGUF and the same
token sequence: for six prompts, modelc's greedy continuation (prompt + 64
tokens) is fed to both engines one token at a time (greedyids --logits,
bench/llamacpp/logits.mjs: F32 KV cache, no flash attention), and at every
position the logits of llama.cpp's top 6 tokens, relative to its best one,
are compared. Identical arithmetic gives differences of the order of 1e-7
(llama.cpp reports float32 probabilities); an 8-bit activation code rounded
the other way gives 1e-3 and more, and every position after it inherits that
through the KV cache.

Usage: GREEDYIDS=/tmp/greedyids LOGITSMJS=bench/llamacpp/logits.mjs [GREEDY_FLAGS=--int] logitdiff.py A.gguf ...
"""
import os, sys

from compare import PROMPTS, run  # same folder


def main():
    greedyids = os.environ["GREEDYIDS"]
    logitsmjs = os.path.abspath(os.environ["LOGITSMJS"])
    extra = os.environ.get("GREEDY_FLAGS", "").split()
    for m in sys.argv[1:]:
        every = []
        for p in PROMPTS:
            g = run([greedyids, "--model", m, "--steps", "64"] + extra + (["--prompt", p] if p else []))
            ids = ",".join(map(str, g["prompt"] + g["ids"][:-1]))
            ours = run([greedyids, "--model", m, "--logits", ids] + extra)
            theirs = run(["node", logitsmjs, "--model", os.path.abspath(m), "--ids", ids, "--top", "6"],
                         cwd=os.path.dirname(logitsmjs))
            errs, first = [], None
            for pos, (lo, th) in enumerate(zip(ours, theirs)):
                best = lo[th[0][0]]
                e = max(abs((lo[t] - best) - d) for t, d in th)
                errs.append(e)
                if first is None and e > 1e-4:
                    first = pos
            every += errs
            errs.sort()
            print(f"{m.split('/')[-1]:16s} prompt {p[:20]!r:24s} |Δ| median {errs[len(errs) // 2]:.1e}, max {errs[-1]:.1e}"
                  + (f"; first above 1e-4 at position {first}" if first is not None else ""))
        every.sort()
        print(f"{m.split('/')[-1]:16s} all {len(every)} positions: median {every[len(every) // 2]:.1e}, 90th percentile {every[len(every) * 9 // 10]:.1e}")


if __name__ == "__main__":
    main()
