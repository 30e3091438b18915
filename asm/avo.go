package asm

import (
	"fmt"
	"math"
	"strings"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

// printAVO compiles the functions built in c and prints them as Go assembly
// and their Go declarations (stubs) for package pkg; what names them in
// errors. Every avo generator of this package ends here.
func printAVO(c *build.Context, pkg, what string) (asmText, stubs []byte, err error) {
	f, err := c.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := compile.Execute(f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	cfg := printer.Config{Name: "modelc", Pkg: pkg}
	if asmText, err = printer.NewGoAsm(cfg).Print(f); err != nil {
		return nil, nil, fmt.Errorf("%s: print assembly: %w", what, err)
	}
	if stubs, err = printer.NewStubs(cfg).Print(f); err != nil {
		return nil, nil, fmt.Errorf("%s: print stubs: %w", what, err)
	}
	return asmText, stubs, nil
}

// compile is avo's pass.Compile with allocate in place of its register
// allocator.
var compile = pass.Concat(
	pass.Verify,
	pass.FunctionPass(pass.PruneJumpToFollowingLabel),
	pass.FunctionPass(pass.PruneDanglingLabels),
	pass.FunctionPass(pass.LabelTarget),
	pass.FunctionPass(pass.CFG),
	pass.InstructionPass(pass.ZeroExtend32BitOutputs),
	pass.FunctionPass(pass.Liveness),
	pass.FunctionPass(allocate),
	pass.FunctionPass(pass.BindRegisters),
	pass.FunctionPass(pass.VerifyAllocation),
	pass.FunctionPass(pass.EnsureBasePointerCalleeSaved),
	pass.Func(pass.IncludeTextFlagHeader),
	pass.FunctionPass(pass.PruneSelfMoves),
	pass.FunctionPass(pass.RequiredISAExtensions),
)

// avx2Vectors is the vector register file of an AVX2 function (one whose
// name has "_avx2"): X0-X15/Y0-Y15. avo's allocator hands out all 32, and
// registers 16-31 exist only with AVX-512 (EVEX encodings): an AVX2 kernel
// given one either fails to assemble (an instruction without an EVEX form,
// VEXTRACTF128) or, worse, assembles to AVX-512 code that faults on an
// AVX2-only CPU.
const avx2Vectors = 16

// allocate is avo's pass.AllocateRegisters, except that an AVX2 function's
// vector registers come from the first avx2Vectors only, so that a kernel
// needing more fails here ("failed to allocate registers", avo never
// spills) instead of in the assembler or at run time. A function that fits
// gets the same registers as from avo's allocator: it takes the lowest free
// register of the most constrained virtual first, and the lists it picks
// from only lose their registers 16-31, which it never reached.
func allocate(fn *ir.Function) error {
	limit := strings.Contains(fn.Name, "_avx2")
	as := map[reg.Kind]*pass.Allocator{}
	for _, i := range fn.Instructions() {
		for _, r := range i.Registers() {
			k := r.Kind()
			if _, found := as[k]; found {
				continue
			}
			f := reg.FamilyOfKind(k)
			if f == nil {
				return fmt.Errorf("%s: unknown register family", fn.Name)
			}
			var rs []reg.Physical
			for _, p := range f.Registers() {
				if limit && k == reg.KindVector && int(p.PhysicalIndex()) >= avx2Vectors {
					continue
				}
				rs = append(rs, p)
			}
			a, err := pass.NewAllocator(rs)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.Name, err)
			}
			// As avo: the base pointer is callee-save, the last choice.
			for _, p := range f.Registers() {
				if p.Info()&reg.BasePointer != 0 {
					a.SetPriority(p.ID(), -1)
				}
			}
			as[k] = a
		}
	}
	for _, i := range fn.Instructions() {
		for _, r := range i.Registers() {
			as[r.Kind()].Add(r.ID())
		}
	}
	for _, i := range fn.Instructions() {
		for _, d := range i.OutputRegisters() {
			k := d.Kind()
			out := i.LiveOut.OfKind(k)
			out.DiscardRegister(d)
			as[k].AddInterferenceSet(d, out)
		}
	}
	fn.Allocation = reg.NewEmptyAllocation()
	for _, a := range as { // independent per kind: the order does not matter
		al, err := a.Allocate()
		if err != nil {
			return fmt.Errorf("%s: %w", fn.Name, err)
		}
		if err := fn.Allocation.Merge(al); err != nil {
			return fmt.Errorf("%s: %w", fn.Name, err)
		}
	}
	return nil
}

// paramAddr is the frame address of argument name of the function being
// built in c.
func paramAddr(c *build.Context, name string) operand.Mem {
	b, err := c.Param(name).Resolve()
	if err != nil {
		panic(err) // the signatures are ours: a mismatch is a bug in this package
	}
	return b.Addr
}

// loadParam loads argument name into a new general-purpose register.
func loadParam(c *build.Context, name string) reg.GPVirtual {
	r := c.GP64()
	c.MOVQ(paramAddr(c, name), r)
	return r
}

// constPool makes a standalone generator's read-only 32-byte vectors, each
// once (amd's constant does the same for the model kernels, 64 bytes wide).
type constPool struct {
	c *build.Context
	m map[string]operand.Mem
}

// vec returns the 32-byte vector of name, words made by add on first use.
func (k *constPool) vec(name string, add func()) operand.Mem {
	if m, ok := k.m[name]; ok {
		return m
	}
	m := k.c.StaticGlobal(name)
	k.c.DataAttributes(attr.RODATA | attr.NOPTR)
	add()
	k.m[name] = m
	return m
}

func (k *constPool) f64(name string, v float64) operand.Mem {
	return k.u64(name, math.Float64bits(v))
}

func (k *constPool) u64(name string, v uint64) operand.Mem {
	return k.vec(name, func() {
		for range 4 {
			k.c.AppendDatum(operand.U64(v))
		}
	})
}

func (k *constPool) u32(name string, v uint32) operand.Mem {
	return k.vec(name, func() {
		for range 8 {
			k.c.AppendDatum(operand.U32(v))
		}
	})
}

// newConstPool returns an empty pool for the functions of c.
func newConstPool(c *build.Context) *constPool {
	return &constPool{c: c, m: map[string]operand.Mem{}}
}

// leaf starts a NOSPLIT, noescape function name of c with signature sig.
func leaf(c *build.Context, name, sig, doc string) {
	c.Function(name)
	c.Attributes(attr.NOSPLIT)
	c.Pragma("noescape")
	c.SignatureExpr(sig)
	c.Doc(doc)
}
