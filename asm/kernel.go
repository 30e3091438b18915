package asm

import (
	"fmt"
	"sort"
)

// Op is the operation a kernel performs; see doc.go for each contract.
type Op int

// The kernel operations.
const (
	OpMatVec          Op = iota + 1 // out[r] = w[r]·x
	OpRMSNormMatVec                 // out[r] = w[r]·(g⊙x)/rms(x)
	OpSwiGLU                        // out[r] = silu(w[r]·x)·(w[Rows+r]·x)
	OpRMSNormSwiGLU                 // SwiGLU on the RMS-normalised x
	OpAttention                     // one head over t cached positions
	OpMatMul                        // out[b][r] = w[r]·x[b] for a batch
	OpGroupAttention                // every head of a layer: Heads KV heads of Group query heads each
	OpSiLUMul                       // out[t][i] = silu(h[t][i])·h[t][F+i], rows of a batched gate|up product
	OpGroupAttentionT               // OpGroupAttention over a position-minor (transposed) KV cache
	OpMatVecAdd                     // out[r] += w[r]·x: a projection added into the residual stream
	OpRoPE                          // rotary embedding of Heads heads of HeadDim in place, from an expanded table
)

var opNames = map[Op]string{
	OpMatVec:          "matvec",
	OpRMSNormMatVec:   "rmsmatvec",
	OpSwiGLU:          "swiglu",
	OpRMSNormSwiGLU:   "rmsswiglu",
	OpAttention:       "attention",
	OpMatMul:          "matmul",
	OpGroupAttention:  "gattention",
	OpSiLUMul:         "silumul",
	OpGroupAttentionT: "gattentiont",
	OpMatVecAdd:       "matvecadd",
	OpRoPE:            "rope",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// ISA is an instruction set a kernel is generated for.
type ISA int

// The instruction sets. Generic is the specialised pure-Go path.
const (
	Generic ISA = iota
	AVX2        // AVX2 + FMA, 16 YMM registers
	AVX512      // AVX-512 F + VL, 32 ZMM registers and opmasks
	NEON        // arm64 Advanced SIMD, 32 V registers
)

func (i ISA) String() string {
	switch i {
	case Generic:
		return "go"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	case NEON:
		return "neon"
	}
	return fmt.Sprintf("ISA(%d)", int(i))
}

// Kernel is one requested kernel: an operation, the shape constants baked into
// it, and the instruction set.
type Kernel struct {
	Op  Op
	ISA ISA
	// Rows: for SwiGLU/RMSNormSwiGLU the FFN width F (the up rows start F rows
	// after the gate rows); for MatMul the total row count R, which is the
	// stride of one token's output. Unused (and not part of the name) for
	// OpMatVec, OpMatVecAdd and OpRMSNormMatVec, whose row count is a run-time
	// argument.
	Rows int
	// Cols is the input length C of a row (matrix ops); for OpSiLUMul the
	// FFN width F (a row of the input holds F gate then F up values).
	Cols int
	// HeadDim and KVStride are the head size and the distance in floats between
	// the cached keys (or values) of consecutive positions (OpAttention).
	HeadDim, KVStride int
	// For OpGroupAttentionT, KVStride is the cache's capacity in positions
	// (a multiple of 16), laid out as TIndex says.
	// Heads and Group (OpGroupAttention, OpGroupAttentionT): the number of KV
	// heads, and of query heads sharing each (grouped-query attention;
	// 1 ≤ Group ≤ 4). OpRoPE: Heads is the number of heads of HeadDim it
	// rotates (the query heads then the KV heads, adjacent).
	Heads, Group int
}

// Name is the kernel's function name: the operation, the baked shape and the
// ISA, e.g. matvec_288_avx2, swiglu_768x288_avx512, attention_48_288_avx2.
// Kernels with the same name are the same function.
func (k Kernel) Name() string {
	switch k.Op {
	case OpMatVec, OpMatVecAdd, OpRMSNormMatVec, OpSiLUMul:
		return fmt.Sprintf("%s_%d_%s", k.Op, k.Cols, k.ISA)
	case OpSwiGLU, OpRMSNormSwiGLU, OpMatMul:
		return fmt.Sprintf("%s_%dx%d_%s", k.Op, k.Rows, k.Cols, k.ISA)
	case OpAttention:
		return fmt.Sprintf("%s_%d_%d_%s", k.Op, k.HeadDim, k.KVStride, k.ISA)
	case OpGroupAttention, OpGroupAttentionT:
		return fmt.Sprintf("%s_%d_%d_%dx%d_%s", k.Op, k.HeadDim, k.KVStride, k.Heads, k.Group, k.ISA)
	case OpRoPE:
		return fmt.Sprintf("%s_%dx%d_%s", k.Op, k.Heads, k.HeadDim, k.ISA)
	}
	return fmt.Sprintf("%s_%s", k.Op, k.ISA)
}

// Signature is the Go declaration of the kernel's parameters (without the
// name), the same for every ISA: pointers to the first element and run-time
// counts, so that a worker pool can hand each worker a range of rows.
func (k Kernel) Signature() string {
	switch k.Op {
	case OpMatVec, OpMatVecAdd, OpSwiGLU:
		return "func(out, w, x *float32, n int)"
	case OpRMSNormMatVec, OpRMSNormSwiGLU:
		return "func(out, w, x, nw *float32, n int, eps float32)"
	case OpAttention, OpGroupAttention, OpGroupAttentionT:
		return "func(out, q, k, v, att *float32, t int)"
	case OpMatMul:
		return "func(out, w, x *float32, n, b int)"
	case OpSiLUMul:
		return "func(out, h *float32, n int)"
	case OpRoPE:
		return "func(x, cs *float32)"
	}
	return ""
}

// Validate reports a kernel whose shape cannot be generated.
func (k Kernel) Validate() error {
	if _, ok := opNames[k.Op]; !ok {
		return fmt.Errorf("kernel: unknown op %d", int(k.Op))
	}
	if k.ISA < Generic || k.ISA > NEON {
		return fmt.Errorf("kernel %s: unknown ISA %d", k.Op, int(k.ISA))
	}
	const limit = 1 << 24 // keeps every baked byte offset inside an int32 displacement
	switch k.Op {
	case OpMatVec, OpMatVecAdd, OpRMSNormMatVec, OpSiLUMul:
		if k.Cols < 1 || k.Cols > limit {
			return fmt.Errorf("kernel %s: cols must be in [1, %d], got %d", k.Name(), limit, k.Cols)
		}
	case OpSwiGLU, OpRMSNormSwiGLU, OpMatMul:
		if k.Cols < 1 || k.Cols > limit {
			return fmt.Errorf("kernel %s: cols must be in [1, %d], got %d", k.Name(), limit, k.Cols)
		}
		if k.Rows < 1 || k.Rows > limit || k.Rows*k.Cols > 1<<28 {
			return fmt.Errorf("kernel %s: rows must be in [1, %d] with rows*cols ≤ 2^28, got %d", k.Name(), limit, k.Rows)
		}
	case OpRoPE:
		// Heads counts the query and the key heads (a spec's heads and
		// kv_heads, each at most 1024).
		if k.HeadDim < 2 || k.HeadDim%2 != 0 || k.HeadDim > 1024 || k.Heads < 1 || k.Heads > 2048 {
			return fmt.Errorf("kernel %s: head dim must be even in [2, 1024] and heads in [1, 2048], got %d and %d", k.Name(), k.HeadDim, k.Heads)
		}
	case OpGroupAttentionT:
		if k.Heads < 1 || k.Heads > 1024 || k.Group < 1 || k.Group > 4 {
			return fmt.Errorf("kernel %s: heads must be in [1, 1024] and group in [1, 4], got %d and %d", k.Name(), k.Heads, k.Group)
		}
		if k.HeadDim < 1 || k.HeadDim > 1024 {
			return fmt.Errorf("kernel %s: head dim must be in [1, 1024], got %d", k.Name(), k.HeadDim)
		}
		if k.KVStride < 16 || k.KVStride%16 != 0 || k.KVStride*k.HeadDim*k.Heads > limit {
			return fmt.Errorf("kernel %s: cache capacity must be a multiple of 16 with capacity·head dim·heads ≤ %d, got %d", k.Name(), limit, k.KVStride)
		}
	case OpAttention, OpGroupAttention:
		if k.Op == OpGroupAttention {
			if k.Heads < 1 || k.Heads > 1024 || k.Group < 1 || k.Group > 4 {
				return fmt.Errorf("kernel %s: heads must be in [1, 1024] and group in [1, 4], got %d and %d", k.Name(), k.Heads, k.Group)
			}
		}
		if k.HeadDim < 1 || k.HeadDim > 1024 {
			return fmt.Errorf("kernel %s: head dim must be in [1, 1024], got %d", k.Name(), k.HeadDim)
		}
		if k.KVStride < k.HeadDim*max(k.Heads, 1) || k.KVStride > limit {
			return fmt.Errorf("kernel %s: kv stride must be in [head dim, %d], got %d", k.Name(), limit, k.KVStride)
		}
	}
	return nil
}

// dedup validates ks, drops repeated names and sorts by name so that the
// output does not depend on the order of the request.
func dedup(ks []Kernel, isa ...ISA) ([]Kernel, error) {
	seen := map[string]bool{}
	var out []Kernel
	for _, k := range ks {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		ok := false
		for _, i := range isa {
			ok = ok || k.ISA == i
		}
		if !ok {
			return nil, fmt.Errorf("kernel %s: ISA %s not handled by this generator", k.Name(), k.ISA)
		}
		if seen[k.Name()] {
			continue
		}
		seen[k.Name()] = true
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// RoPEPeriod is the length of each half of a RoPE kernel's table: the head
// size repeated up to a multiple of 16 floats, so that every vector of any
// path starts at a whole multiple of its width within the table.
func RoPEPeriod(headDim int) int {
	p := headDim
	for p%16 != 0 {
		p += headDim
	}
	return p
}
