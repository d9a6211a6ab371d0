// Command vireo is Vireo's single binary: the services, the all-in-one
// `vireo up`, training, evaluation, import/export and benchmarks.
//
// main only builds the context and calls run, which tests drive directly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"vireo/pkg/kernels/cpu"
)

func main() {
	reexecForBLAS()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "vireo:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "vireo:", err)
		os.Exit(1)
	}
}

// usageError is a command-line mistake (exit status 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// registry holds every subcommand; each lives in its own cmd_*.go file and
// registers itself in an init function, so commands can be added without
// touching this file.
var registry = map[string]command{}

func register(c command) {
	if _, dup := registry[c.name]; dup {
		panic("vireo: command registered twice: " + c.name)
	}
	registry[c.name] = c
}

// commands lists the registered subcommands sorted by name.
func commands() []command {
	cs := make([]command, 0, len(registry))
	for _, c := range registry {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

func init() {
	register(command{"version", "print the version and the OpenBLAS kernels in use", func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet("vireo version", flag.ContinueOnError)
		fs.SetOutput(stderr)
		core := fs.Bool("blas-core", false, "print only the name of the OpenBLAS kernel set in use (a value for OPENBLAS_CORETYPE)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("version: unexpected argument %q", fs.Arg(0))
		}
		if *core {
			fmt.Fprintln(stdout, cpu.BLASCore())
			return nil
		}
		fmt.Fprintln(stdout, "vireo", version)
		fmt.Fprintln(stdout, blasLine())
		return nil
	}})
}

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return usagef("missing command")
		}
		return nil
	}
	envErrors = nil
	if c, ok := registry[args[0]]; ok {
		return c.run(ctx, args[1:], stdout, stderr)
	}
	usage(stderr)
	return usagef("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vireo <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vireo <command> -h' for a command's flags.")
}
