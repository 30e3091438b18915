#!/usr/bin/env python3
"""Compare runtime/quant's Q8_0 and Q4_0 blocks with ggml's reference
quantisers byte for byte, and its Q6_K decoding with ggml's.

Usage: check.py LIBGGML_BASE_SO GGMLCHECK_BINARY
(e.g. bench/llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
and a `go build -o /tmp/ggmlcheck ./runtime/quant/ggmlcheck`)."""
import ctypes, random, struct, subprocess, sys

lib = ctypes.CDLL(sys.argv[1])
tool = sys.argv[2]

def rows():
    r = random.Random(1)
    blocks = []
    for i in range(4000):
        scale = 10 ** r.uniform(-9, 3)
        blocks.append([r.gauss(0, 1) * scale for _ in range(32)])
    # Hand-made edge cases: ties at .5, equal magnitudes of both signs, zeros,
    # a single non-zero, the Q4_0 cap at 15, tiny scales (float16 subnormal).
    blocks.append([127, -127, 0.5, -0.5, 1.5, 2.5, -2.5] + [0] * 25)
    blocks.append([8, -8] * 16)
    blocks.append([-8, 8] * 16)
    blocks.append([0.0] * 32)
    blocks.append([0.0] * 31 + [-3e-6])
    blocks.append([7.9, -8] + [i / 4 - 4 for i in range(30)])
    blocks.append([1e-7 * (j - 16) for j in range(32)])
    blocks.append([65504.0 * (1 if j % 2 else -1) for j in range(32)])
    for _ in range(500):  # values on half-steps of the scale
        d = r.choice([1.0, 0.25, 3.0])
        blocks.append([d * (r.randint(-254, 254) / 2) for _ in range(31)] + [127 * d])
    flat = [struct.unpack("<f", struct.pack("<f", v))[0] for b in blocks for v in b]
    return flat

x = rows()
n = len(x)
buf = (ctypes.c_float * n)(*x)
raw = struct.pack("<%df" % n, *x)
fail = 0
for name, size, fn in (("q8_0", 34, lib.quantize_row_q8_0_ref), ("q4_0", 18, lib.quantize_row_q4_0_ref)):
    out = (ctypes.c_uint8 * (n // 32 * size))()
    fn.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_int64]
    fn(buf, out, n)
    want = bytes(out)
    got = subprocess.run([tool, name], input=raw, capture_output=True, check=True).stdout
    diff = [i for i in range(n // 32) if want[i * size:(i + 1) * size] != got[i * size:(i + 1) * size]]
    print(f"{name}: {n // 32} blocks, {len(diff)} differ from ggml" + (f" (first: block {diff[0]})" if diff else ""))
    fail += len(diff)

# Q6_K (decoded only): ggml quantises, both dequantise.
m = n // 256 * 256
qb = (ctypes.c_uint8 * (m // 256 * 210))()
lib.quantize_row_q6_K_ref.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_int64]
lib.quantize_row_q6_K_ref(buf, qb, m)
deq = (ctypes.c_float * m)()
lib.dequantize_row_q6_K.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64]
lib.dequantize_row_q6_K(qb, deq, m)
want = struct.pack("<%df" % m, *deq)
got = subprocess.run([tool, "dq6_k"], input=bytes(qb), capture_output=True, check=True).stdout
diff = [i for i in range(m) if want[4 * i:4 * i + 4] != got[4 * i:4 * i + 4]]
print(f"dequantise q6_K: {m // 256} super-blocks, {len(diff)} values differ from ggml" + (f" (first: {diff[0]})" if diff else ""))
fail += len(diff)
sys.exit(1 if fail else 0)
