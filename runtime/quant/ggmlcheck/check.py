#!/usr/bin/env python3
"""Compare runtime/quant's Q8_0 and Q4_0 blocks with ggml's reference
quantisers byte for byte, its Q6_K decoding with ggml's, and (given a CPU
backend library) its activation quantiser with the one that backend runs
before every Q8_0/Q4_0 product.

Usage: check.py LIBGGML_BASE_SO GGMLCHECK_BINARY [LIBGGML_CPU_SO]
(e.g. bench/llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so,
a `go build -o /tmp/ggmlcheck ./runtime/quant/ggmlcheck`, and libggml-cpu-zen4.so
or -haswell.so from the same folder: the variant this machine loads)."""
import ctypes, random, struct, subprocess, sys

lib = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
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
# Activations: the CPU backend's from_float for Q8_0 (its vectorised
# quantiser: float16 scale, codes x·127/max rounded to nearest even), which
# differs from quantize_row_q8_0_ref in rounding ties and in 127/max vs 1/d.
if len(sys.argv) > 3:
    cpu = ctypes.CDLL(sys.argv[3])
    cpu.ggml_cpu_init()

    class Traits(ctypes.Structure):
        _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p),
                    ("vec_dot_type", ctypes.c_int), ("nrows", ctypes.c_int64)]

    cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(Traits)
    from_float = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_int64)(
        cpu.ggml_get_type_traits_cpu(8).contents.from_float)  # 8: GGML_TYPE_Q8_0
    r = random.Random(2)
    extra = []
    for _ in range(20000):
        amax = 10 ** r.uniform(-8, 4)
        extra.append([r.uniform(-1, 1) * amax for _ in range(31)] + [amax])
    y = x + [struct.unpack("<f", struct.pack("<f", v))[0] for b in extra for v in b]
    m = len(y)
    out = (ctypes.c_uint8 * (m // 32 * 34))()
    from_float((ctypes.c_float * m)(*y), out, m)
    want = bytes(out)
    got = subprocess.run([tool, "act"], input=struct.pack("<%df" % m, *y), capture_output=True, check=True).stdout
    # A block whose float16 scale is 0 contributes 0 whatever its codes
    # (ggml's codes there are not meaningful: 127/max may overflow).
    diff = [i for i in range(m // 32) if want[i * 34:(i + 1) * 34] != got[i * 34:(i + 1) * 34]
            and want[i * 34:i * 34 + 2] != b"\0\0"]
    print(f"activations: {m // 32} blocks, {len(diff)} differ from the CPU backend's quantiser" + (f" (first: block {diff[0]})" if diff else ""))
    fail += len(diff)

sys.exit(1 if fail else 0)
