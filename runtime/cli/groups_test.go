package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/modelc/modelc/runtime/generic"
)

// An unknown subcommand of a group is an error, not its help and exit 0.
func TestStrictGroups(t *testing.T) {
	root := &cobra.Command{Use: "x"}
	grp := &cobra.Command{Use: "grp"}
	grp.AddCommand(&cobra.Command{Use: "sub", Run: func(*cobra.Command, []string) {}})
	root.AddCommand(grp)
	StrictGroups(root)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"grp", "nope"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `unknown command "nope"`) {
		t.Errorf("unknown subcommand: %v", err)
	}
	root.SetArgs([]string{"grp"})
	if err := root.Execute(); err != nil {
		t.Errorf("the group alone: %v", err)
	}
}

// TestFlagErrors: a flag value that does not parse is said plainly, not as
// Go's strconv error.
func TestFlagErrors(t *testing.T) {
	s := storiesSpec(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "-s", "-1"}, `stories: invalid argument "-1" for "-s, --seed" flag: want an integer ≥ 0` + "\n"},
		{[]string{"generate", "-n", "1e3"}, `stories: invalid argument "1e3" for "-n, --steps" flag: want an integer` + "\n"},
		{[]string{"generate", "-t", "warm"}, `stories: invalid argument "warm" for "-t, --temperature" flag: want a number` + "\n"},
	} {
		if r := run(t, s, generic.New, c.args...); r.code != 1 || r.stderr != c.want {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
