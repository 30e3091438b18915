package cli

import "io"

// Output passes writes on to w and keeps the first error. Commands print
// with fmt.Fprint* and cobra's Print*, which drop write errors; the
// command line checks Err after a command succeeded, so that output lost to
// a full disk or a bad descriptor is a failure (exit 1), not a silent 0.
type Output struct {
	w   io.Writer
	err error
}

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

func (o *Output) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// Err returns the first write error, nil if none.
func (o *Output) Err() error { return o.err }
