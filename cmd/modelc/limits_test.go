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
	for _, bad := range [][]string{
		{"limits", "--sizes", "12XB"},
		{"limits", "--sizes", "1KiB"},
		{"limits", "--threads", "0"},
		{"limits", "--paths", "sse9", "--sizes", "64KiB"},
		{"limits", "--passes", "0"},
	} {
		if _, err := run(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
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
