// Command curve compares modelc's training with PyTorch's from the same
// initial weights on the same batches: `prepare` draws the weights and the
// batches, trains the generic model on them and records its losses;
// torch_curve.py trains PyTorch on the same files; `plot` draws both curves.
//
//	go run ./runtime/train/bench/curve prepare --spec s.yaml --data text.txt --tokenizer tok.bin --steps 300 --dir /tmp/curve
//	/usr/bin/python3 runtime/train/bench/torch_curve.py /tmp/curve
//	go run ./runtime/train/bench/curve plot --dir /tmp/curve
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/modelc/modelc/runtime/generic"
	"github.com/modelc/modelc/runtime/model"
	"github.com/modelc/modelc/runtime/train"
	"github.com/modelc/modelc/spec"
	"github.com/modelc/modelc/tokenizer"
)

type tensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	Off   int    `json:"off"`
}

type config struct {
	Spec    spec.Spec  `json:"spec"`
	Train   spec.Train `json:"train"`
	Steps   int        `json:"steps"`
	Tensors []tensor   `json:"tensors"`
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: curve prepare|plot [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	specPath := fs.String("spec", "", "model spec (YAML)")
	data := fs.String("data", "", "text corpus")
	tokPath := fs.String("tokenizer", "", "tokenizer file")
	steps := fs.Int("steps", 300, "optimizer steps")
	dir := fs.String("dir", "", "folder for the files")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "prepare":
		fail(prepare(*specPath, *data, *tokPath, *steps, *dir))
	case "plot":
		fail(plotCurves(*dir))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "curve:", err)
		os.Exit(1)
	}
}

func prepare(specPath, data, tokPath string, steps int, dir string) error {
	s, err := spec.Load(specPath)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(tokPath, s.Vocab)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tokFile := filepath.Join(dir, "data.tok")
	if _, err := train.PrepareData([]string{data}, tok, tokFile); err != nil {
		return err
	}
	toks, err := train.OpenTokens(tokFile)
	if err != nil {
		return err
	}
	defer toks.Close()
	hp := s.Train
	B, T := hp.BatchSize, hp.SeqLen
	trainSplit, _, err := train.SplitTokens(toks, T+1)
	if err != nil {
		return err
	}
	p := train.InitParams(s, hp.Seed)
	cfg := config{Spec: *s, Train: hp, Steps: steps}
	for _, t := range p.Tensors {
		cfg.Tensors = append(cfg.Tensors, tensor{t.Name, t.Shape, t.Off})
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if err := writeF32(filepath.Join(dir, "init.bin"), p.Data); err != nil {
		return err
	}

	m, err := generic.New(p)
	if err != nil {
		return err
	}
	tr, err := m.(model.Trainable).NewTrainer(B, T)
	if err != nil {
		return err
	}
	opt := train.NewAdamW(p, hp.Beta1, hp.Beta2, hp.WeightDecay)
	sched := train.Schedule{LR: hp.LR, MinLR: hp.MinLR, Warmup: hp.WarmupSteps, Total: steps}
	sampler := train.NewSampler(trainSplit, train.Objective{Vocab: s.Vocab}, hp.Seed)
	batches, err := os.Create(filepath.Join(dir, "batches.bin"))
	if err != nil {
		return err
	}
	defer batches.Close()
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	var losses []float64
	for step := 0; step < steps; step++ {
		tr.ZeroGrads()
		sampler.Next(tokens, targets, B, T)
		binary.Write(batches, binary.LittleEndian, tokens)
		binary.Write(batches, binary.LittleEndian, targets)
		l := tr.Forward(tokens, targets, B, T)
		tr.Backward()
		train.ClipGradNorm(tr.Grads(), hp.GradClip)
		opt.Update(p.Data, tr.Grads(), sched.At(step))
		losses = append(losses, float64(l))
		if step%50 == 0 || step == steps-1 {
			fmt.Fprintf(os.Stderr, "step %d loss %.4f\n", step+1, l)
		}
	}
	return writeJSON(filepath.Join(dir, "go.json"), losses)
}

func plotCurves(dir string) error {
	var goL, torchL []float64
	for name, v := range map[string]*[]float64{"go.json": &goL, "torch.json": &torchL} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	p := plot.New()
	p.Title.Text = "training loss from the same weights and batches"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats per token)"
	p.Add(plotter.NewGrid())
	for i, c := range []struct {
		name string
		l    []float64
	}{{"modelc (generic model)", goL}, {"PyTorch eager", torchL}} {
		xy := make(plotter.XYs, len(c.l))
		for j, v := range c.l {
			xy[j] = plotter.XY{X: float64(j + 1), Y: v}
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		line.Color = plotter.DefaultLineStyle.Color
		if i == 1 {
			line.Color = plotColor
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(c.name, line)
	}
	p.Legend.Top = true
	out := filepath.Join(dir, "curve.png")
	if err := p.Save(8*vg.Inch, 5*vg.Inch, out); err != nil {
		return err
	}
	n := min(len(goL), len(torchL))
	var maxDiff, lastG, lastT float64
	for i := 0; i < n; i++ {
		maxDiff = max(maxDiff, math.Abs(goL[i]-torchL[i]))
	}
	k := min(20, n)
	for i := n - k; i < n; i++ {
		lastG += goL[i] / float64(k)
		lastT += torchL[i] / float64(k)
	}
	fmt.Printf("%d steps: mean loss of the last %d steps: modelc %.4f, PyTorch %.4f; largest per-step difference %.4f; plot %s\n",
		n, k, lastG, lastT, maxDiff, out)
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func writeF32(path string, v []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var plotColor = color.RGBA{R: 220, G: 60, B: 30, A: 255}
