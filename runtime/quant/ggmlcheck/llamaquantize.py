#!/usr/bin/env python3
"""Quantise a GGUF with llama.cpp's own quantizer (llama_model_quantize from
the libllama that node-llama-cpp ships, called through ctypes with llama.cpp's
default parameters), to check that files made by llama.cpp load and run in
modelc, and to compare them with `modelc quantize`'s byte for byte.

Usage: llamaquantize.py LIBDIR IN.gguf OUT.gguf q8_0|q4_0
(LIBDIR: bench/llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64)
"""
import ctypes, os, sys

if len(sys.argv) != 5 or sys.argv[4] not in ("q8_0", "q4_0"):
    sys.exit(__doc__)
libdir, inp, out, ftype = sys.argv[1:]
for name in ("libggml-base.so", "libggml.v0.4.0.so"):
    ctypes.CDLL(os.path.join(libdir, name), mode=ctypes.RTLD_GLOBAL)
llama = ctypes.CDLL(os.path.join(libdir, "libllama.v0.4.0.so"), mode=ctypes.RTLD_GLOBAL)


class Params(ctypes.Structure):  # llama_model_quantize_params of llama.h (v0.4.0)
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32),
                ("output_tensor_type", ctypes.c_int32), ("token_embedding_type", ctypes.c_int32),
                ("allow_requantize", ctypes.c_bool), ("quantize_output_tensor", ctypes.c_bool),
                ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool), ("keep_split", ctypes.c_bool),
                ("dry_run", ctypes.c_bool), ("imatrix", ctypes.c_void_p), ("kv_overrides", ctypes.c_void_p),
                ("tt_overrides", ctypes.c_void_p), ("prune_layers", ctypes.c_void_p),
                ("max_buf_size", ctypes.c_size_t)]


llama.llama_model_quantize_default_params.restype = Params
llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
llama.llama_model_quantize.restype = ctypes.c_uint32
llama.llama_backend_init()
p = llama.llama_model_quantize_default_params()
p.ftype = {"q8_0": 7, "q4_0": 2}[ftype]  # LLAMA_FTYPE_MOSTLY_Q8_0, _Q4_0
p.nthread = 1
sys.exit(llama.llama_model_quantize(inp.encode(), out.encode(), ctypes.byref(p)))
