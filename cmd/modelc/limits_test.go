package main

import (
	"strings"
	"testing"
)

func TestLimitsCommand(t *testing.T) {
	out, err := run(t, "limits", "--sizes", "64KiB", "--threads", "1,2", "--passes", "1", "--fma-time", "2ms", "--paths", "go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"read bandwidth", "64 KiB", "FMA peak", "2 threads"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Each bad flag is named before anything is printed or measured.
	for _, bad := range [][]string{
		{"limits", "--sizes", "12XB"},
		{"limits", "--sizes", "1KiB"},
		{"limits", "--sizes", "100"},
		{"limits", "--threads", "0"},
		{"limits", "--sizes", "64KiB", "--paths", "sse9"},
		{"limits", "--passes", "0"},
		{"limits", "--fma-time", "0s"},
		{"limits", "--fma-time", "-1s"},
	} {
		out, err := run(t, bad...)
		if flag := bad[len(bad)-2]; err == nil || !strings.Contains(err.Error(), flag) || out != "" {
			t.Errorf("%v: %v, output %q; want an error naming %s and no output", bad, err, out, flag)
		}
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("256KiB, 8MiB,1GiB,4096")
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{256 << 10, 8 << 20, 1 << 30, 4096}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("size %d = %d, want %d", i, got[i], want[i])
		}
	}
	for _, n := range []int64{1 << 30, 8 << 20, 256 << 10, 4000} {
		if s := sizeString(n); s == "" {
			t.Errorf("sizeString(%d) empty", n)
		}
	}
	if sizeString(1<<30) != "1 GiB" || sizeString(4000) != "4000 B" {
		t.Errorf("sizeString: %q, %q", sizeString(1<<30), sizeString(4000))
	}
}

// A huge --threads is refused before anything starts that many threads.
func TestThreadsBounded(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"limits", "--sizes", "64KiB", "--threads", "1,100000", "--paths", "go"}, "--threads: must be between 1 and 1024, got 100000"},
		{[]string{"bench", "no-such-spec.yaml", "--threads", "5000"}, "--threads: must be between 0 (all cores) and 1024, got 5000"},
	} {
		if _, err := run(t, c.args...); err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
