// run.mjs: llama.cpp (the CPU build node-llama-cpp ships) on one GGUF, with the
// protocol of modelc's `bench` command, so the two engines' figures compare:
//
//   1. warm-up: 4 greedy tokens from BOS, then a batch as long as step 3's
//      (BOS repeated), on a sequence cleared after each (the weights are
//      mmapped: the first pass faults them in; the batch touches the
//      compute buffers a long batch needs);
//   2. decode: from BOS, `steps` positions, one token per evaluation, greedy;
//      the time covers every evaluation and its sampling;
//   3. prefill: the `steps` tokens fed in step 2 (BOS and the first steps-1
//      greedy ids) evaluated as one batch on a cleared sequence, up to the
//      sampled token after the last one.
//
// It prints one JSON line: tokens/s of both phases, the greedy ids (steps of
// them, the token sampled at each position), the thread count and the CPU
// backend variant llama.cpp chose.
//
// Usage: node run.mjs --model X.gguf [--threads 1] [--steps 128] [--prompt-ids 1,2,3]
// With --prompt-ids, decoding starts after that prompt (BOS included if
// wanted) instead of after BOS alone, and prefill runs the prompt.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        model: { type: "string" },
        threads: { type: "string", default: "1" },
        steps: { type: "string", default: "128" },
        "prompt-ids": { type: "string" },
        kv: { type: "string", default: "f16" },
        fa: { type: "string", default: "auto" },
    },
    strict: true,
});

function fail(msg) {
    process.stderr.write(`run.mjs: ${msg}\n`);
    process.exit(1);
}

const threads = Number(opt.threads);
const steps = Number(opt.steps);
if (!opt.model) fail("--model X.gguf is required");
if (!Number.isInteger(threads) || threads < 1) fail(`--threads: must be an integer ≥ 1, got ${opt.threads}`);
if (!Number.isInteger(steps) || steps < 1) fail(`--steps: must be an integer ≥ 1, got ${opt.steps}`);
if (opt.kv !== "f16" && opt.kv !== "f32") fail(`--kv: must be f16 (llama.cpp's default) or f32, got ${opt.kv}`);
if (opt.fa !== "auto" && opt.fa !== "off") fail(`--fa: must be auto (llama.cpp's default) or off, got ${opt.fa}`);

// llama.cpp names the CPU variant it loads (ggml's GGML_BACKEND_DL build
// scores one library per micro-architecture) in an info line.
let backend = "";
const llama = await getLlama({
    gpu: false, // the CPU build only
    build: "never", // the prebuilt binaries; never compile llama.cpp here
    maxThreads: threads,
    logLevel: LlamaLogLevel.log, // "log" carries the load_backend line; debug would add per-call noise
    logger: (level, message) => {
        const m = /loaded (\S+) backend from (\S+)/.exec(message);
        if (m) backend = m[2].replace(/^.*\//, "");
        else if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(message);
    },
});
if (llama.gpu !== false) fail(`expected the CPU build, got gpu ${llama.gpu}`);

const model = await llama.loadModel({ modelPath: opt.model, gpuLayers: 0 });
const bos = model.tokens.bos;
if (bos == null) fail(`${opt.model}: the vocabulary has no BOS token`);
const trainCtx = model.trainContextSize;

let prompt = [bos];
if (opt["prompt-ids"] !== undefined) {
    prompt = opt["prompt-ids"].split(",").map((s) => Number(s.trim()));
    const bad = prompt.findIndex((t) => !Number.isInteger(t) || t < 0);
    if (prompt.length === 0 || bad >= 0) fail(`--prompt-ids: token ${bad} is not a non-negative integer`);
}
if (prompt.length + steps > trainCtx + 1) fail(`prompt ${prompt.length} + steps ${steps} exceed the context of ${trainCtx}`);

const context = await model.createContext({
    contextSize: trainCtx,
    threads: { ideal: threads, min: threads },
    batchSize: Math.min(512, trainCtx),
    // F16 keys and values are llama.cpp's default; F32 is modelc's cache type.
    ...(opt.kv === "f32" ? { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } : {}),
    // Flash attention (on by default on CPU) rounds Q to F16 for Q·K.
    flashAttention: opt.fa === "auto" ? "auto" : false,
});
const seq = context.getSequence();
const greedy = { temperature: 0, yieldEogToken: true };
const now = () => Number(process.hrtime.bigint()) / 1e9;

// decode runs `n` evaluations: the prompt, then n-1 single tokens, each
// followed by greedy sampling, and returns the n sampled ids.
async function decode(prompt, n) {
    const ids = [];
    const it = seq.evaluate(prompt, greedy);
    while (ids.length < n) {
        const r = await it.next();
        if (r.done) break;
        ids.push(r.value);
    }
    await it.return();
    return ids;
}

await decode([bos], 4);
await seq.clearHistory();
await decode(Array(prompt.length === 1 ? steps : prompt.length).fill(bos), 1);
await seq.clearHistory();

// Decode: positions 0..steps-1 from BOS evaluate one token each. With a
// prompt, its batch is the first evaluation and not counted as decode time.
let t0 = now();
let ids;
let decodeTokens = steps;
if (prompt.length === 1) {
    ids = await decode(prompt, steps);
} else {
    const it = seq.evaluate(prompt, greedy);
    const first = await it.next();
    t0 = now();
    ids = [first.value];
    while (ids.length < steps + 1) {
        const r = await it.next();
        if (r.done) break;
        ids.push(r.value);
    }
    await it.return();
    decodeTokens = ids.length - 1;
}
const decodeSeconds = now() - t0;
if (ids.length < (prompt.length === 1 ? steps : steps + 1)) fail(`decode stopped after ${ids.length} tokens`);
await seq.clearHistory();

// Prefill: the tokens fed during decode (or the prompt) in one batch.
const fed = prompt.length === 1 ? [bos, ...ids.slice(0, steps - 1)] : prompt;
t0 = now();
const pre = await decode(fed, 1);
const prefillSeconds = now() - t0;

process.stdout.write(
    JSON.stringify({
        engine: "llama.cpp",
        package: "node-llama-cpp@3.21.1",
        backend,
        threads: context.idealThreads,
        kv: opt.kv,
        flashAttention: context.flashAttention,
        context: context.contextSize,
        decode: { tokens: decodeTokens, seconds: decodeSeconds, tokPerSec: decodeTokens / decodeSeconds },
        prefill: { tokens: fed.length, seconds: prefillSeconds, tokPerSec: fed.length / prefillSeconds },
        prefillNext: pre[0],
        ids,
    }) + "\n",
);
await context.dispose();
await model.dispose();
await llama.dispose();
