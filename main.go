// Command leadhook is a Kubernetes-native lead intake: one binary with several roles.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	_ "time/tzdata" // time zones on images without a zoneinfo database
)

const usage = `leadhook receives leads by webhook, checks and normalises them and stores them in MongoDB.

Usage:
  leadhook server [flags]       serve the webhook endpoints
  leadhook controller [flags]   reconcile LeadIntegrations in a cluster
  leadhook send [flags]         post a file's bytes to an integration, signed as it expects
  leadhook help                 show this help

Run "leadhook <command> --help" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "controller":
		err = runController(os.Args[2:])
	case "send":
		err = runSend(os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "leadhook: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	var refused usageError
	switch {
	case errors.As(err, &refused): // the flag package has said what is wrong, with the usage
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "leadhook %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// usageError is a command line the flag package refused and has explained on stderr.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseFlags parses a command's flags: the usage asked for with -h/--help goes to help (so
// that it can be piped), the usage after a mistake goes to errs.
func parseFlags(fs *flag.FlagSet, args []string, help, errs io.Writer) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(errs)
	w := errs
	if errors.Is(err, flag.ErrHelp) {
		w = help
	}
	_, _ = w.Write(out.Bytes())
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}
