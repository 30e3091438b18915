// Package cli is the command line every generated model binary shares:
// `generate`, `info` and `bench`, written once against model.Model.
//
// A generated main is one line, cli.Main("name", &Spec, pkg.New), plus options
// through which the generated code learns the thread count (WithThreads) and
// reports its kernel path (WithKernelPath).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/runtime/cpu"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/posttrain"
	"github.com/modelc/modelc/runtime/rag"
	"github.com/modelc/modelc/runtime/server"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
)

// Option adjusts what Main does.
type Option func(*config)

type config struct {
	threads    []func(n int)
	kernelPath func() string
}

// WithThreads registers f to be called with --threads (default: all cores)
// before a model is built, so that compiled code can size its worker pool.
func WithThreads(f func(n int)) Option {
	return func(c *config) { c.threads = append(c.threads, f) }
}

// WithKernelPath registers f as the source of the kernel path `info` reports
// (for example "avx2+fma"). A model may also report it itself by having a
// KernelPath() string method.
func WithKernelPath(f func() string) Option {
	return func(c *config) { c.kernelPath = f }
}

// KernelPather is implemented by models that can say which kernels they run.
type KernelPather interface{ KernelPath() string }

// Main runs the command line for a binary called name compiled for s, whose
// models factory builds, and exits: status 0, or 1 after printing one line
// "name: error" on stderr. Interrupt (Ctrl-C) or SIGTERM stops the command
// cleanly (training saves a checkpoint); it then exits 130 or 143 as the
// shell's convention has it, unless the command finished anyway (serve's
// drain exits 0). A second signal ends a command that has not stopped yet at
// once, removing the temporary file of an output being written.
func Main(name string, s *spec.Spec, factory model.Factory, opts ...Option) {
	ctx, cancel := context.WithCancel(context.Background())
	// SIGTERM is what kill, systemd and container runtimes send: unhandled,
	// it would end a training run without its checkpoint, or leave a run
	// folder with no checkpoint that neither a new run nor --resume accepts.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	caught := make(chan syscall.Signal, 1)
	go func() {
		sig := <-sigs
		caught <- sig.(syscall.Signal)
		cancel()
		sig = <-sigs
		atomicfile.RemoveTemps()
		fmt.Fprintf(os.Stderr, "%s: stopped (%v again)\n", name, sig)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	code := Run(ctx, name, s, factory, os.Args[1:], os.Stdout, os.Stderr, opts...)
	select {
	case sig := <-caught:
		if code != 0 {
			code = 128 + int(sig)
		}
	default:
	}
	os.Exit(code)
}

// Run is Main without the exit: it runs args and returns the exit status.
func Run(ctx context.Context, name string, s *spec.Spec, factory model.Factory, args []string, stdout, stderr io.Writer, opts ...Option) (code int) {
	cmd := Command(name, s, factory, opts...)
	cmd.SetArgs(args)
	out := NewOutput(stdout)
	cmd.SetOut(out)
	cmd.SetErr(stderr)
	defer func() {
		// Nothing a user types should crash the binary; if some code below
		// panics anyway, report it as one line like any other error.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "%s: internal error: %v\n", name, r)
			code = 1
		}
	}()
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		err = out.Err()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}

// Command builds the cobra command tree (for embedding or tests); its errors
// are returned, not printed.
func Command(name string, s *spec.Spec, factory model.Factory, opts ...Option) *cobra.Command {
	a := &app{name: name, spec: s, factory: factory}
	for _, o := range opts {
		o(&a.cfg)
	}
	root := &cobra.Command{
		Use:   name,
		Short: fmt.Sprintf("%s: a language model compiled by modelc for one shape (dim %d, %d layers, vocab %d)", name, s.Dim, s.Layers, s.Vocab),
		Long: fmt.Sprintf(`%s runs one model shape with code specialised for it by modelc.
It reads llama2.c .bin checkpoints and GGUF files whose shape matches the
compiled one (see "%s info").`, name, name),
		Example: fmt.Sprintf(`  %[1]s generate --model stories260K.bin --tokenizer tok512.bin --prompt "Once upon a time"
  %[1]s info
  %[1]s bench --random --compare`, name),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(a.generateCmd(), a.infoCmd(), a.benchCmd())
	var trainOpts []train.Option
	for _, f := range a.cfg.threads {
		trainOpts = append(trainOpts, train.WithThreads(f))
	}
	root.AddCommand(train.Commands(name, s, factory, trainOpts...)...)
	root.AddCommand(server.Command(name, s, factory, a.cfg.threads...))
	var ragOpts []rag.Option
	for _, f := range a.cfg.threads {
		ragOpts = append(ragOpts, rag.WithThreads(f))
	}
	root.AddCommand(rag.Commands(name, s, factory, ragOpts...)...)
	var ptOpts []posttrain.Option
	for _, f := range a.cfg.threads {
		ptOpts = append(ptOpts, posttrain.WithThreads(f))
	}
	root.AddCommand(posttrain.Commands(name, s, factory, ptOpts...)...)
	StrictGroups(root)
	PlainFlagErrors(root)
	return root
}

type app struct {
	name    string
	spec    *spec.Spec
	factory model.Factory
	cfg     config
}

// threadsFlag validates --threads and hands it to the compiled code.
func (a *app) setThreads(n int) error {
	if err := cpu.CheckThreads(n); err != nil {
		return err
	}
	for _, f := range a.cfg.threads {
		f(n)
	}
	return nil
}

func defaultThreads() int { return runtime.NumCPU() }

var errNoModel = errors.New("--model FILE is required")
