// Reference ids from gpt-3-encoder (GPT-2's byte-level BPE in JavaScript) for
// modelc's tokenizer tests. Input: a JSON array of strings (file argv[2]).
// Output: one line per string, its token ids separated by spaces.
'use strict';
const fs = require('fs');
const { encode } = require('gpt-3-encoder');

const items = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = [];
for (const s of items) out.push(encode(s).join(' '));
fs.writeSync(1, out.join('\n') + '\n');
