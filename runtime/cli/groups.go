package cli

import (
	"errors"
	"regexp"

	"github.com/spf13/cobra"
)

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

// PlainFlagErrors makes root and the commands under it word flag values
// that do not parse as a user reads them (the flag parser quotes Go's
// strconv errors).
func PlainFlagErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return plainFlagError(err) })
}

var strconvRE = regexp.MustCompile(`strconv\.Parse(Uint|Int|Float|Bool): parsing "[^"]*": (invalid syntax|value out of range)`)

// plainFlagError rewrites `invalid argument "-1" for "-s, --seed" flag:
// strconv.ParseUint: parsing "-1": invalid syntax` to end in "want an
// integer ≥ 0".
func plainFlagError(err error) error {
	want := map[string]string{"Uint": "an integer ≥ 0", "Int": "an integer", "Float": "a number", "Bool": "true or false"}
	msg := strconvRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := strconvRE.FindStringSubmatch(m)
		if sub[2] == "value out of range" {
			return "out of range"
		}
		return "want " + want[sub[1]]
	})
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
