// Command kordctl is kord's operator tool. Each sub-command lives in its own file and
// registers itself in commands from an init function, so that sub-commands stay independent:
//
//	kordctl genesis ...            system-channel genesis block and channel-creation txs
//	kordctl channel create|update|fetch ...
//	kordctl fetch ...              Deliver blocks of a channel to files or stdout
//	kordctl verify ...             check a chain and compare the chains of several orderers
//	kordctl bench ...              Broadcast/Deliver load
//	kordctl version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one sub-command. run gets the arguments after the sub-command's name and
// returns the process exit code's error: nil for success, a usageError for bad flags.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	if _, dup := commands[name]; dup {
		panic("kordctl: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// usageError marks errors caused by the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "kordctl: unknown command %q\n", args[0])
		usage()
		return 2
	}
	if err := c.run(ctx, args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "kordctl %s: %v\n", args[0], err)
		if _, ok := err.(usageError); ok {
			return 2
		}
		return 1
	}
	return 0
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: kordctl <command> [flags]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}
