// Encode throughput of JavaScript GPT-2 (r50k) tokenizers on the text the Go
// runner uses (tinyshakespeare + the Cranfield collection), one thread.
// Checks the libraries agree id for id and writes the ids (uint32
// little-endian) to argv[3] when given, for gobench/encode -ids.
// Usage: node encode_bench.js <shared/data> [ids.bin] [passes]
'use strict';
const fs = require('fs');
const path = require('path');

const data = process.argv[2] || path.join(__dirname, '../../../shared/data');
const idsOut = process.argv[3] || '';
const passes = Number(process.argv[4] || 5);
const text = ['text/tinyshakespeare.txt', 'retrieval/cran.all.1400']
  .map(f => fs.readFileSync(path.join(data, f), 'utf8')).join('');
const bytes = Buffer.byteLength(text, 'utf8');

const { getEncoding } = require('js-tiktoken');
const { get_encoding } = require('tiktoken');
const gptTokenizer = require('gpt-tokenizer/cjs/encoding/r50k_base');
const jsTik = getEncoding('r50k_base');
const wasmTik = get_encoding('r50k_base');

// Versions from the installed package.json files (not all export them).
const version = name => JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules', name, 'package.json'), 'utf8')).version;

const libs = [
  ['js-tiktoken ' + version('js-tiktoken'), () => jsTik.encode(text)],
  ['tiktoken (WASM) ' + version('tiktoken'), () => wasmTik.encode_ordinary(text)],
  ['gpt-tokenizer ' + version('gpt-tokenizer'), () => gptTokenizer.encode(text)],
];

console.log(`text: ${bytes} bytes; node ${process.version}`);
let ref = null;
for (const [name, enc] of libs) {
  const ids = Array.from(enc()); // warm-up pass, also the ids to compare
  if (ref === null) {
    ref = ids;
  } else if (ids.length !== ref.length || ids.some((v, i) => v !== ref[i])) {
    console.error(`${name}: ids differ from ${libs[0][0]}`);
    process.exit(1);
  }
  const rates = [];
  for (let i = 0; i < passes; i++) {
    const t0 = process.hrtime.bigint();
    enc();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(bytes / 1e6 / s);
  }
  rates.sort((a, b) => a - b);
  const best = rates[rates.length - 1], median = rates[rates.length >> 1];
  console.log(`${name.padEnd(28)} best ${best.toFixed(2).padStart(7)} MB/s  median ${median.toFixed(2).padStart(7)} MB/s`);
}
console.log(`ids: all libraries agree (${ref.length} tokens)`);
if (idsOut) {
  const buf = Buffer.alloc(4 * ref.length);
  ref.forEach((v, i) => buf.writeUInt32LE(v, 4 * i));
  fs.writeFileSync(idsOut, buf);
}
