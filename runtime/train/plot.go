package train

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/modelc/modelc/internal/atomicfile"
)

// PlotFile is the loss curve's name in a run folder.
const PlotFile = "loss.png"

// PlotLoss draws the training loss of every step and the validation loss of
// the steps that evaluated to a PNG at path (written atomically).
func PlotLoss(path, title string, ms []Metric) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats per token)"
	p.Add(plotter.NewGrid())
	var tr, val plotter.XYs
	for _, m := range ms {
		tr = append(tr, plotter.XY{X: float64(m.Step), Y: m.Loss})
		if m.ValLoss != nil {
			val = append(val, plotter.XY{X: float64(m.Step), Y: *m.ValLoss})
		}
	}
	if len(tr) > 0 {
		l, err := plotter.NewLine(tr)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color = plotter.DefaultLineStyle.Color
		p.Add(l)
		p.Legend.Add("train", l)
	}
	if len(val) > 0 {
		l, s, err := plotter.NewLinePoints(val)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color = valColor
		s.Color = valColor
		p.Add(l, s)
		p.Legend.Add("validation", l, s)
	}
	p.Legend.Top = true
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

var valColor = color.RGBA{R: 220, G: 60, B: 30, A: 255}
