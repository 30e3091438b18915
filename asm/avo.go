package asm

import (
	"fmt"

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
