package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
