package enroll

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Usage of the `agent` subcommand.
const Usage = `usage:
  hub agent add <host> [--pipeline] [--out FILE] [--data-dir DIR]
      enrol <host> (a new key; an earlier one of the same name stops working)
      and write its credentials file to FILE (mode 0600), or print it
      --pipeline: a credential that may publish latency for <host> only
  hub agent revoke <host> [--pipeline] [--data-dir DIR]
      a running hub drops the credential within a second and disconnects it
  hub agent list [--data-dir DIR]
`

// ErrUsage is Command's error for arguments it does not understand; the
// caller shows Usage.
var ErrUsage = errors.New("bad arguments")

// Command runs `hub agent <args>` on the enrolment of the data directory
// (dataDir unless --data-dir says otherwise). Flags may follow the host.
func Command(args []string, dataDir string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hub agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&dataDir, "data-dir", dataDir, "the hub's data directory")
	pipeline := fs.Bool("pipeline", false, "a latency-only credential")
	out := fs.String("out", "", "write the credentials file here (mode 0600) instead of printing it")
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		return ErrUsage
	}
	kind := Agent
	if *pipeline {
		kind = Pipeline
	}
	store := Open(dataDir)
	switch {
	case pos[0] == "add" && len(pos) == 2:
		creds, err := store.Add(pos[1], kind)
		if err != nil {
			return err
		}
		if *out == "" {
			_, err = stdout.Write(creds)
			return err
		}
		if err := WriteFile(*out, creds); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled %s %s; credentials written to %s (pass it to the agent with --nats-creds)\n", kind, pos[1], *out)
		return nil
	case pos[0] == "revoke" && len(pos) == 2:
		if err := store.Revoke(pos[1], kind); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s %s\n", kind, pos[1])
		return nil
	case pos[0] == "list" && len(pos) == 1:
		es, err := store.Load()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tADDED\tKEY")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Kind, e.Added.Format(time.RFC3339), e.Key)
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w: %q", ErrUsage, pos)
}
