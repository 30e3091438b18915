package asm

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
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
	if err := pass.Compile.Execute(f); err != nil {
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
