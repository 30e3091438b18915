package cli

import "github.com/spf13/cobra"

// StrictGroups makes every command under root that only groups subcommands
// refuse an unknown one ("modelc spec check": an error and a non-zero exit)
// instead of printing its help and exiting 0, as cobra does for groups
// below the root. Without arguments a group still prints its help.
func StrictGroups(root *cobra.Command) {
	for _, c := range root.Commands() {
		StrictGroups(c)
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = cobra.NoArgs
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
}
