# modelc: the two commands on a fresh machine are `make demo` and `make test`.
SHARED ?= ../shared/data
MODELS := $(SHARED)/models
SPECS := $(wildcard generated/*/model.yaml)
NAMES := $(patsubst generated/%/model.yaml,%,$(SPECS))
GO ?= go

.PHONY: all generate build test test-short bench demo fuzz clean bench-llamacpp bench-moe bench-serve bench-quant agree-llamacpp

all: build

## generate: recompile every bundled spec into generated/ (go generate)
generate:
	$(GO) generate ./generated/...

## build: build modelc and one binary per bundled spec into bin/
build:
	@mkdir -p bin
	$(GO) build -o bin/modelc ./cmd/modelc
	@for n in $(NAMES); do echo "go build -o bin/$$n ./generated/$$n/cmd/$$n"; $(GO) build -o bin/$$n ./generated/$$n/cmd/$$n || exit 1; done

## test: vet, regenerate-and-compare, all tests, the pure-Go build, and the
## arm64 NEON kernels under qemu-user (needs ../shared/data)
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./e2e ./asm/... ./runtime/cpu ./runtime/screen
	GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64 ./e2e ./asm/... ./runtime/cpu ./runtime/screen

## bench: compiled vs generic decode and prefill tokens/s on stories260K and the
## 15M shape, one thread, on each kernel path (AVX-512, AVX2, pure Go)
bench: build
	@for g in "" cpu.avx512f=off cpu.avx512f=off,cpu.avx2=off; do \
		echo "== GODEBUG=$$g kernels: $$(GODEBUG=$$g bin/stories260k info | sed -n 's/^kernels: //p')"; \
		GODEBUG=$$g bin/stories260k bench --compare --model $(MODELS)/stories260K.bin --steps 256 --threads 1 || exit 1; \
		GODEBUG=$$g bin/llama15m bench --compare --random --steps 64 --threads 1 || exit 1; \
	done

## demo: compile the bundled stories260k spec, build its binary and tell its story
demo:
	@test -f $(MODELS)/stories260K.bin || { echo "demo: $(MODELS)/stories260K.bin not found (see README: The two commands)"; exit 1; }
	$(GO) run ./cmd/modelc gen generated/stories260k/model.yaml
	@mkdir -p bin
	$(GO) build -o bin/stories260k ./generated/stories260k/cmd/stories260k
	bin/stories260k generate --model $(MODELS)/stories260K.bin --tokenizer $(MODELS)/tok512.bin \
		--prompt "Once upon a time" --steps 256 --temperature 0

## fuzz: run every fuzz target for a short while
fuzz:
	@for p in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "$$p $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=20s $$p || exit 1; \
		done; done

## bench-llamacpp: modelc vs llama.cpp (npm node-llama-cpp 3.21.1, CPU build) on the
## same GGUFs: decode and prefill tokens/s at 1 and 2 threads, interleaved rounds,
## greedy ids of both engines (they must agree), machine limits; Markdown on stdout.
## Random-weight shapes get std RANDOM_STD (see bench/RESULTS-e2e.md). Needs npm.
bench-llamacpp: build
	cd bench/llamacpp && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund; }
	@mkdir -p bench/llamacpp/out
	bin/modelc convert $(MODELS)/stories260K.bin --tokenizer $(MODELS)/tok512.bin bench/llamacpp/out/stories260k.gguf
	bin/modelc convert --random generated/llama15m/model.yaml --std $(or $(RANDOM_STD),0.5) --tokenizer $(MODELS)/llama2c_tokenizer32000.bin bench/llamacpp/out/llama15m.gguf
	bin/modelc convert --random generated/llama110m/model.yaml --std $(or $(RANDOM_STD),0.5) --tokenizer $(MODELS)/llama2c_tokenizer32000.bin bench/llamacpp/out/llama110m.gguf
	$(GO) build -o bench/llamacpp/out/greedy ./bench/llamacpp/greedy
	$(GO) run ./bench/llamacpp/sidebyside -bin bin -dir bench/llamacpp/out -rounds $(or $(ROUNDS),5)

## bench-moe: the mixture-of-experts shape against dense shapes of its active and
## its total parameters, and the shape at Q8_0 (modelc quantize), modelc and llama.cpp
## on the same GGUFs (as bench-llamacpp; the quantised random-weight file's greedy ids
## may part from llama.cpp's, reported).
MOE_MODELS = moe8x256 dense512 dense2048
bench-moe: build
	cd bench/llamacpp && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund; }
	@mkdir -p bench/llamacpp/out
	@for m in $(MOE_MODELS); do bin/modelc convert --random generated/$$m/model.yaml --std $(or $(RANDOM_STD),0.5) --tokenizer $(MODELS)/tok512.bin bench/llamacpp/out/$$m.gguf || exit 1; done
	bin/modelc quantize -q bench/llamacpp/out/moe8x256.gguf bench/llamacpp/out/moe8x256_q8_0.gguf --type q8_0
	$(GO) build -o bench/llamacpp/out/greedy ./bench/llamacpp/greedy
	$(GO) run ./bench/llamacpp/sidebyside -bin bin -dir bench/llamacpp/out -models moe8x256,moe8x256_q8_0,dense512,dense2048 -rounds $(or $(ROUNDS),5) -lenient moe8x256_q8_0

## bench-serve: the compiled 15M shape (random weights, std 0.5) served twice,
## batched decoding on and off, loaded side by side by runtime/server/loadgen
## with 1, 4, 16, 64 streaming clients (CLIENTS, REQUESTS per client); the
## servers stop at the end. Markdown on stdout, with the load average.
SERVE_GGUF := bin/llama15m-random.gguf
SERVE_ON ?= 127.0.0.1:18089
SERVE_OFF ?= 127.0.0.1:18090
CLIENTS ?= 1,4,16,64
REQUESTS ?= 2
bench-serve:
	@mkdir -p bin
	$(GO) build -o bin/modelc ./cmd/modelc
	$(GO) build -o bin/llama15m ./generated/llama15m/cmd/llama15m
	$(GO) build -o bin/loadgen ./runtime/server/loadgen
	@test -f $(SERVE_GGUF) || bin/modelc convert --random generated/llama15m/model.yaml --std 0.5 \
		--tokenizer $(MODELS)/llama2c_tokenizer32000.bin $(SERVE_GGUF)
	@uptime
	@bin/llama15m serve --model $(SERVE_GGUF) --slots 64 --max-queue 256 --batch on --addr $(SERVE_ON) --log-level warn & on=$$!; \
	bin/llama15m serve --model $(SERVE_GGUF) --slots 64 --max-queue 256 --batch off --addr $(SERVE_OFF) --log-level warn & off=$$!; \
	trap 'kill $$on $$off 2>/dev/null; wait $$on $$off' EXIT INT TERM; \
	bin/loadgen --url http://$(SERVE_ON),http://$(SERVE_OFF) --batch on,off --wait 60s \
		--clients $(CLIENTS) --requests $(REQUESTS)
	@uptime

## bench-quant: the compiled quantised models (quant: q8_0|q4_0) against llama.cpp on the
## same files: the 15M and 110M shapes at F32, Q8_0 and Q4_0 (modelc quantize), as
## bench-llamacpp measures them (runtime/quant/RESULTS.md). The quantised random-weight
## files' greedy ids may part from llama.cpp's (reported); the trained stories260K's
## Q8_0 file must agree for all 128 tokens; its Q4_0 file parts at token 78 (a float
## difference rounds one 8-bit activation code the other way; reported). Needs npm.
bench-quant: build
	cd bench/llamacpp && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund; }
	@mkdir -p bench/llamacpp/out
	bin/modelc convert $(MODELS)/stories260K.bin --tokenizer $(MODELS)/tok512.bin bench/llamacpp/out/stories260k.gguf
	@for m in llama15m llama110m; do \
		bin/modelc convert --random generated/$$m/model.yaml --std $(or $(RANDOM_STD),0.5) --tokenizer $(MODELS)/llama2c_tokenizer32000.bin bench/llamacpp/out/$$m.gguf || exit 1; done
	@for m in stories260k llama15m llama110m; do \
		for q in q8_0 q4_0; do bin/modelc quantize -q bench/llamacpp/out/$$m.gguf bench/llamacpp/out/$${m}_$$q.gguf --type $$q || exit 1; done; done
	$(GO) build -o bench/llamacpp/out/greedy ./bench/llamacpp/greedy
	$(GO) run ./bench/llamacpp/sidebyside -bin bin -dir bench/llamacpp/out -rounds $(or $(ROUNDS),3) -threads $(or $(THREADS),1) \
		-models stories260k_q8_0,stories260k_q4_0,llama15m,llama15m_q8_0,llama15m_q4_0,llama110m,llama110m_q8_0,llama110m_q4_0 \
		-lenient stories260k_q4_0,llama15m_q8_0,llama15m_q4_0,llama110m_q8_0,llama110m_q4_0

## agree-llamacpp: greedy tokens of a model trained here against llama.cpp's on the same
## Q8_0 and Q4_0 files (runtime/quant/RESULTS.md, "Activations quantised as llama.cpp
## does"): runtime/train/bench/results/shakespeare.yaml trained 3,000 steps on
## tinyshakespeare (≈ 20 min at one thread, once: the run is kept in bench/llamacpp/out),
## quantised, then six prompts × 64 tokens through the compiled shakespeare_q8_0/_q4_0
## packages and llama.cpp (F32 KV cache, no flash attention). Needs npm and python3.
AGREE_RUN := bench/llamacpp/out/shakespeare
agree-llamacpp:
	cd bench/llamacpp && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund; }
	@mkdir -p bench/llamacpp/out
	$(GO) build -o bin/modelc ./cmd/modelc
	$(GO) build -o bench/llamacpp/out/trainrun ./runtime/train/bench/trainrun
	$(GO) build -o bench/llamacpp/out/greedyids ./runtime/quant/greedyids
	$(GO) build -o bench/llamacpp/out/greedy ./bench/llamacpp/greedy
	[ -f $(AGREE_RUN)/model.gguf ] || bench/llamacpp/out/trainrun --spec runtime/train/bench/results/shakespeare.yaml train \
		--data $(SHARED)/text/tinyshakespeare.txt --tokenizer $(MODELS)/tok512.bin --steps 3000 --threads 1 --out $(AGREE_RUN)
	@for q in q8_0 q4_0; do bin/modelc quantize -q $(AGREE_RUN)/model.gguf $(AGREE_RUN)/$$q.gguf --type $$q || exit 1; done
	GREEDYIDS=bench/llamacpp/out/greedyids RUNMJS=bench/llamacpp/run.mjs GREEDY=bench/llamacpp/out/greedy \
		python3 runtime/quant/greedyids/compare.py $(AGREE_RUN)/q8_0.gguf $(AGREE_RUN)/q4_0.gguf

clean:
	rm -rf bin
