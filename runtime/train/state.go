package train

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/modelc/modelc/internal/atomicfile"
	"github.com/modelc/modelc/internal/f32le"
	"github.com/modelc/modelc/runtime/model"
)

// The training state file holds everything a resumed run needs to continue
// bit for bit: the exact float32 weights (so resuming never depends on the
// GGUF export, which may be rewritten separately), the AdamW moments and
// step, the data sampler's generator state and position, and the step.
//
//	offset  size  field
//	0       4     magic "MCTS"
//	4       4     version (1), uint32 little-endian
//	8       4     length L of the JSON header
//	12      L     JSON header (StateHeader)
//	…       4·n   weights, float32 little-endian (n = header.params)
//	…       4·n   AdamW first moments
//	…       4·n   AdamW second moments
//	end-4   4     CRC-32 (Castagnoli) of every byte before it
//
// It is written to a temporary file, synced and renamed, so a crash leaves
// the previous state intact.
const (
	stateMagic   = "MCTS"
	stateVersion = 1
	// StateFile is the state's name in a run folder.
	StateFile = "state.bin"
)

// StateHeader is the JSON part of a training state.
type StateHeader struct {
	Step      int     `json:"step"`       // optimizer steps done
	AdamStep  int64   `json:"adam_step"`  // AdamW's t (equals step)
	Params    int     `json:"params"`     // floats in each array
	Drawn     int64   `json:"drawn"`      // training windows drawn: the data position
	Tokens    int64   `json:"tokens"`     // training tokens seen
	RNG       []byte  `json:"rng"`        // the sampler's PCG state (MarshalBinary)
	TrainLoss float64 `json:"train_loss"` // loss of the last step
	ValLoss   float64 `json:"val_loss"`   // last validation loss, NaN-free (0 = none yet)
	Elapsed   float64 `json:"elapsed_s"`  // training seconds so far
}

// State is a saved training state.
type State struct {
	StateHeader
	Weights, M, V []float32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SaveState writes st to path atomically.
func SaveState(path string, st *State) error {
	n := st.Params
	if len(st.Weights) != n || len(st.M) != n || len(st.V) != n {
		return fmt.Errorf("save state %s: arrays of %d, %d, %d floats for %d parameters", path, len(st.Weights), len(st.M), len(st.V), n)
	}
	hdr, err := json.Marshal(st.StateHeader)
	if err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	var b [12]byte
	copy(b[:], stateMagic)
	binary.LittleEndian.PutUint32(b[4:], stateVersion)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(hdr)))
	w.Write(b[:])
	w.Write(hdr)
	for _, arr := range [][]float32{st.Weights, st.M, st.V} {
		f32le.Write(w, arr) // a bufio.Writer's error comes back from Flush
	}
	if err := w.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("save state %s: %w", path, err)
	}
	binary.LittleEndian.PutUint32(b[:4], crc.Sum32())
	if _, err := f.Write(b[:4]); err != nil {
		f.Abort()
		return fmt.Errorf("save state %s: %w", path, err)
	}
	return f.Commit()
}

// LoadState reads and verifies a state file. Weights that hold NaN or ±Inf
// are refused, by their index in the whole array (LoadStateFor names the
// tensor).
func LoadState(path string) (*State, error) { return LoadStateFor(path, nil) }

// ResumeState loads the checkpoint of the run in dir to continue it to steps
// in all, as pretraining and every post-training stage do: a run stopped
// before its first checkpoint, and fewer steps than it has done, are named.
func ResumeState(dir string, tensors []model.Tensor, steps int) (*State, error) {
	path := filepath.Join(dir, StateFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("resume %s: no checkpoint in it (the run stopped before its first): remove the folder and start the run again", dir)
	}
	st, err := LoadStateFor(path, tensors)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if steps < st.Step {
		return nil, fmt.Errorf("--steps %d: the run in %s has done %d steps already", steps, dir, st.Step)
	}
	return st, nil
}

// WriteRunFile writes a run's settings, v as JSON, to dir's run.json.
func WriteRunFile(dir string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, RunFile), append(b, '\n'))
}

// LoadStateFor is LoadState for the state of a model whose tensors (its
// model.Layout) say which tensor a NaN or infinity is in.
func LoadStateFor(path string, tensors []model.Tensor) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("training state: %w", err)
	}
	return parseState(path, data, tensors)
}

func parseState(path string, data []byte, tensors []model.Tensor) (*State, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("training state %s: %s", path, fmt.Sprintf(format, a...))
	}
	if len(data) < 16 || string(data[:4]) != stateMagic {
		return nil, bad("not a training state file (no %q header)", stateMagic)
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[4:]); v != stateVersion {
		return nil, bad("version %d, this program reads version %d", v, stateVersion)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), le.Uint32(data[len(data)-4:]); got != want {
		return nil, bad("checksum mismatch (file damaged or truncated)")
	}
	hl := int(le.Uint32(data[8:]))
	if hl > len(body)-12 {
		return nil, bad("offset 8: header length %d exceeds the file", hl)
	}
	st := &State{}
	if err := json.Unmarshal(body[12:12+hl], &st.StateHeader); err != nil {
		return nil, bad("header: %v", err)
	}
	n := st.Params
	rest := body[12+hl:]
	if n < 0 || n > len(rest)/12 || len(rest) != 12*n {
		return nil, bad("header says %d parameters, the file holds %d bytes of arrays", n, len(rest))
	}
	if st.Step < 0 || st.AdamStep < 0 || st.Drawn < 0 {
		return nil, bad("negative step or position")
	}
	arrays := make([]float32, 3*n)
	for i := range arrays {
		arrays[i] = math.Float32frombits(le.Uint32(rest[4*i:]))
	}
	st.Weights, st.M, st.V = arrays[:n:n], arrays[n:2*n:2*n], arrays[2*n:]
	// Only the weights: a second moment may be +Inf after a huge but
	// finite gradient, which AdamW survives (that weight's update is 0).
	if err := checkWeights(st.Weights, tensors); err != nil {
		return nil, bad("%v", err)
	}
	return st, nil
}

// checkWeights refuses NaN and ±Inf in w, naming the tensor when tensors
// lay out exactly w.
func checkWeights(w []float32, tensors []model.Tensor) error {
	if k := len(tensors); k == 0 || tensors[k-1].Off+tensors[k-1].Len() != len(w) {
		if i := model.NonFinite(w); i >= 0 {
			return fmt.Errorf("weight %d is %v", i, w[i])
		}
		return nil
	}
	for _, t := range tensors {
		if err := model.CheckFinite(t.Name, w[t.Off:t.Off+t.Len()], 0); err != nil {
			return err
		}
	}
	return nil
}
