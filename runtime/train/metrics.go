package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/modelc/modelc/internal/atomicfile"
)

// MetricsFile is the metrics' name in a run folder: one JSON object a line.
const MetricsFile = "metrics.jsonl"

// Metric is one line of metrics.jsonl: a training step, with the
// validation loss on the steps that evaluated.
type Metric struct {
	Step      int      `json:"step"`
	Loss      float64  `json:"loss"`
	ValLoss   *float64 `json:"val_loss,omitempty"`
	LR        float64  `json:"lr"`
	GradNorm  float64  `json:"grad_norm"`
	Tokens    int64    `json:"tokens"`
	TokPerSec float64  `json:"tok_per_s"`
	Elapsed   float64  `json:"elapsed_s"`
	// With a mixture of experts (a trainer that is a model.ExpertStats):
	// the load-balancing loss of the step (times its coefficient, not in
	// Loss) and each layer's share of routing slots per expert.
	AuxLoss     *float64    `json:"aux_loss,omitempty"`
	ExpertShare [][]float64 `json:"expert_share,omitempty"`
}

// BusiestExpert is the largest share of routing slots any one expert of any
// layer received in the step (0 without experts): 1/E is perfect balance.
func (m Metric) BusiestExpert() float64 {
	var b float64
	for _, l := range m.ExpertShare {
		for _, v := range l {
			b = max(b, v)
		}
	}
	return b
}

// readMetrics reads a metrics file, keeping the lines up to step keep: a
// resumed run redoes the steps after its checkpoint. A missing file is empty.
func readMetrics(path string, keep int) ([]Metric, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var ms []Metric
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m Metric
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("metrics %s:%d: %w", path, line, err)
		}
		if m.Step <= keep {
			ms = append(ms, m)
		}
	}
	return ms, sc.Err()
}

// writeMetrics rewrites the whole metrics file atomically.
func writeMetrics(path string, ms []Metric) error {
	var b bytes.Buffer
	for _, m := range ms {
		line, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

// metricsLog appends lines as steps complete; lines after the last
// checkpoint may be lost in a crash, like the steps themselves.
type metricsLog struct {
	f *os.File
}

func openMetricsLog(path string) (*metricsLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metricsLog{f: f}, nil
}

func (l *metricsLog) append(m Metric) error {
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("metrics %s: %w", l.f.Name(), err)
	}
	return nil
}

func (l *metricsLog) close() error { return l.f.Close() }
