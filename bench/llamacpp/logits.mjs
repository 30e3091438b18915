// logits.mjs: llama.cpp's next-token distribution at every position of a
// given token sequence, evaluated one token at a time (the decode path), for
// comparing another engine's logits with llama.cpp's, not just its greedy ids.
//
// For each position it prints the top tokens and their logits relative to
// the best one (log p_i − log p_best, which equals l_i − l_best: the softmax's
// normaliser cancels).
//
// Usage: node logits.mjs --model X.gguf --ids 1,2,3 [--top 8] [--kv f32]
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        model: { type: "string" },
        ids: { type: "string" },
        top: { type: "string", default: "8" },
        kv: { type: "string", default: "f32" },
    },
    strict: true,
});
function fail(msg) {
    process.stderr.write(`logits.mjs: ${msg}\n`);
    process.exit(1);
}
if (!opt.model || !opt.ids) fail("--model X.gguf and --ids 1,2,3 are required");
const ids = opt.ids.split(",").map((s) => Number(s.trim()));
if (ids.some((t) => !Number.isInteger(t) || t < 0)) fail("--ids: every id must be a non-negative integer");
const top = Number(opt.top);

const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: opt.model, gpuLayers: 0 });
const context = await model.createContext({
    contextSize: model.trainContextSize,
    threads: { ideal: 1, min: 1 },
    ...(opt.kv === "f32" ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
    flashAttention: false,
});
const seq = context.getSequence();
const out = [];
const it = seq.evaluateWithMetadata([ids[0]], { probabilities: true }, { temperature: 1, topK: 0, topP: 1, minP: 0 });
let r = await it.next();
for (let i = 1; ; i++) {
    if (r.done) break;
    const probs = r.value.probabilities;
    const entries = [...probs.entries()].slice(0, top);
    const lp0 = Math.log(entries[0][1]);
    out.push(entries.map(([t, p]) => [t, Math.log(p) - lp0]));
    if (i >= ids.length) break;
    r = await it.next(ids[i]);
}
await it.return();
process.stdout.write(JSON.stringify(out) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
