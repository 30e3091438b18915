package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws one status line: rewritten in place on a terminal, and a
// line every twentieth of the run (and at every evaluation) otherwise, so
// that logs stay short.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	every int
	last  string
	drawn bool
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, every: max(1, total/20)}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) step(m Metric, doneHere int, secs float64) {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d/%d  loss %.4f", m.Step, p.total, m.Loss)
	if m.ValLoss != nil {
		fmt.Fprintf(&b, "  val %.4f", *m.ValLoss)
	}
	if m.AuxLoss != nil {
		fmt.Fprintf(&b, "  aux %.4f  busiest expert %.2f", *m.AuxLoss, m.BusiestExpert())
	}
	fmt.Fprintf(&b, "  lr %.2e  %s tok/s", m.LR, human(m.TokPerSec))
	if doneHere > 0 && m.Step < p.total {
		eta := time.Duration(secs / float64(doneHere) * float64(p.total-m.Step) * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	p.last = b.String()
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", p.last)
		p.drawn = true
	case m.Step%p.every == 0 || m.ValLoss != nil || m.Step == p.total:
		fmt.Fprintln(p.w, p.last)
	}
}

func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
