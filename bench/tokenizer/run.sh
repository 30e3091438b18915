#!/usr/bin/env bash
# Tokenizer benchmarks, one thread each, on the same text and vocabulary:
#   encode throughput: modelc vs tiktoken-go (Go) and js-tiktoken, tiktoken
#   (WASM), gpt-tokenizer (Node.js), ids checked identical across all;
#   training time and peak RSS: modelc's trainer vs spm_train --model_type=bpe.
# Needs: Node.js + npm (npm ci here), Go, and Debian's sentencepiece package
# (apt-get install -y sentencepiece). Usage: bench/tokenizer/run.sh [passes]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${DATA:-$(cd "$here/../../.." && pwd)/shared/data}
passes=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$here"
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "== encode (GPT-2 / r50k vocabulary)"
node encode_bench.js "$data" "$tmp/js-ids.bin" "$passes"
(cd gobench && go run ./encode -data "$data" -passes "$passes" -ids "$tmp/js-ids.bin")

echo "== training (one thread; min pair frequency 1 as spm_train)"
cat "$data/text/tinyshakespeare.txt" > "$tmp/shakespeare.txt"
cat "$data/text/tinyshakespeare.txt" "$data/retrieval/cran.all.1400" > "$tmp/shakespeare+cran.txt"
(cd gobench && go build -o "$tmp/train" ./train)
for job in "4096 shakespeare" "32000 shakespeare+cran"; do
  set -- $job
  vocab=$1 corpus="$tmp/$2.txt"
  echo "-- vocab $vocab on $2 ($(wc -c < "$corpus") bytes)"
  /usr/bin/time -f "spm_train: %e s wall, %U s user, peak RSS %M KB" \
    spm_train --input="$corpus" --model_prefix="$tmp/spm$vocab" --vocab_size="$vocab" --model_type=bpe \
      --num_threads=1 --byte_fallback=true --character_coverage=1.0 --normalization_rule_name=identity \
      --remove_extra_whitespaces=false --minloglevel=2 2>&1 | grep -v "escaped characters"
  for style in sentencepiece bytelevel; do
    /usr/bin/time -f "modelc $style: %e s wall, %U s user, peak RSS %M KB" \
      "$tmp/train" -q -minfreq 1 -style "$style" -vocab "$vocab" -input "$corpus"
  done
done
