package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/chainverify"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/msp"
)

func init() {
	register("fetch", "Deliver blocks of a channel from an orderer to files or stdout", runFetch)
}

// ordererFlags are the flags every command that talks to an orderer takes.
type ordererFlags struct {
	mspDir, mspID string
	tls           client.TLSFiles
	timeout       time.Duration
}

func (o *ordererFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.mspDir, "msp-dir", os.Getenv("CORE_PEER_MSPCONFIGPATH"), "local MSP directory of the identity that signs Deliver requests (default $CORE_PEER_MSPCONFIGPATH)")
	fs.StringVar(&o.mspID, "msp-id", os.Getenv("CORE_PEER_LOCALMSPID"), "MSP ID of that identity (default $CORE_PEER_LOCALMSPID)")
	fs.StringVar(&o.tls.CA, "tls-ca", "", "PEM file of the orderer's TLS CA; enables TLS")
	fs.BoolVar(&o.tls.Enabled, "tls", false, "use TLS with the system's root CAs (implied by --tls-ca)")
	fs.StringVar(&o.tls.Cert, "tls-cert", "", "client TLS certificate (orderers that require client authentication)")
	fs.StringVar(&o.tls.Key, "tls-key", "", "client TLS private key")
	fs.StringVar(&o.tls.ServerName, "tls-server-name", "", "name to check in the orderer's TLS certificate (default: the host of --orderer)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long (0: no limit)")
}

func (o *ordererFlags) signer() (*msp.Signer, error) {
	if o.mspDir == "" || o.mspID == "" {
		return nil, usageError{"--msp-dir and --msp-id are required (Deliver requests are signed)"}
	}
	s, err := msp.LoadSigner(o.mspDir, o.mspID)
	if err != nil {
		return nil, fmt.Errorf("--msp-dir %s: %w", o.mspDir, err)
	}
	return s, nil
}

// fetchFrom delivers start..stop of channel from addr and calls fn for every block.
func (o *ordererFlags) fetchFrom(ctx context.Context, addr string, s client.Signer, fo client.FetchOptions, fn func(*cb.Block) error) error {
	tc, err := o.tls.Config()
	if err != nil {
		return err
	}
	conn, err := client.Dial(ctx, addr, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := client.Fetch(ctx, conn, s, fo, fn); err != nil {
		return fmt.Errorf("orderer %s: %w", addr, err)
	}
	return nil
}

func (o *ordererFlags) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout > 0 {
		return context.WithTimeout(ctx, o.timeout)
	}
	return context.WithCancel(ctx)
}

func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("kordctl "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kordctl %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// errHelp ends a command after -h printed its usage (exit status 0).
var errHelp = errors.New("help shown")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

func runFetch(ctx context.Context, args []string) error {
	fs := newFlagSet("fetch", "--orderer HOST:PORT --channel ID [--start oldest|newest|N] [--stop oldest|newest|N|follow] [--out DIR|-] --msp-dir DIR --msp-id ID [TLS flags]")
	var (
		of               ordererFlags
		addr, channel    string
		start, stop, out string
		wait, bestEffort bool
		quiet            bool
	)
	fs.StringVar(&addr, "orderer", "", "orderer address host:port")
	fs.StringVar(&channel, "channel", "", "channel ID")
	fs.StringVar(&start, "start", "oldest", "first block: oldest, newest or a number")
	fs.StringVar(&stop, "stop", "newest", "last block: oldest, newest, a number, or follow (keep receiving new blocks until interrupted or --timeout)")
	fs.StringVar(&out, "out", ".", "directory for the block files (<channel>_<number>.block), or - for stdout (each block as a varint length and the marshalled block)")
	fs.BoolVar(&wait, "wait", true, "wait for blocks not yet written (false: the orderer answers NOT_FOUND)")
	fs.BoolVar(&bestEffort, "best-effort", false, "ask the orderer to serve its ledger even while its consenter is in error")
	fs.BoolVar(&quiet, "quiet", false, "do not report progress on stderr")
	of.register(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if addr == "" || channel == "" {
		return usageError{"--orderer and --channel are required"}
	}
	fo := client.FetchOptions{Channel: channel, Wait: wait, BestEffort: bestEffort}
	var err error
	if fo.Start, err = client.ParsePosition(start); err != nil {
		return usageError{"--start: " + err.Error()}
	}
	if strings.EqualFold(stop, "follow") {
		fo.Stop = client.Specified(client.MaxBlock)
		fo.Wait = true
	} else if fo.Stop, err = client.ParsePosition(stop); err != nil {
		return usageError{"--stop: " + err.Error()}
	}
	s, err := of.signer()
	if err != nil {
		return err
	}
	var write func(*cb.Block) error
	if out == "-" {
		w := chainverify.NewStreamWriter(os.Stdout)
		write = w.Write
	} else {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		write = func(b *cb.Block) error {
			_, err := chainverify.WriteBlockFile(out, channel, b)
			return err
		}
	}
	ctx, cancel := of.context(ctx)
	defer cancel()
	n := 0
	var first, last uint64
	err = of.fetchFrom(ctx, addr, s, fo, func(b *cb.Block) error {
		if n == 0 {
			first = b.GetHeader().GetNumber()
		}
		last = b.GetHeader().GetNumber()
		n++
		return write(b)
	})
	report := io.Writer(os.Stderr)
	if quiet {
		report = io.Discard
	}
	if n > 0 {
		dest := out
		if out == "-" {
			dest = "stdout"
		}
		fmt.Fprintf(report, "channel %s: %d blocks (%d..%d) from %s written to %s\n", channel, n, first, last, addr, dest)
	}
	if err != nil {
		if fo.Stop.GetSpecified() != nil && fo.Stop.GetSpecified().Number == client.MaxBlock && errors.Is(err, context.Canceled) {
			return nil // follow ended by an interrupt
		}
		return err
	}
	if n == 0 {
		fmt.Fprintf(report, "channel %s: no block delivered by %s\n", channel, addr)
	}
	return nil
}
