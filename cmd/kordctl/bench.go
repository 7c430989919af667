package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/loadgen"
	"github.com/kordhq/kord/orderer/msp"
)

func init() {
	register("bench", "Broadcast load and Deliver latency against any Fabric orderer (JSON report)", runBench)
}

// benchFlags are the command line of kordctl bench.
type benchFlags struct {
	orderer, channel, mspDir, mspID       string
	tlsCA, tlsCert, tlsKey, tlsServerName string
	streams, size, maxInFlight            int
	count                                 uint64
	duration, drainTimeout                time.Duration
	rate                                  float64
	signOnTheFly, deliver                 bool
	progress, jsonOut                     string
}

const defaultBenchCount = 10000

func parseBenchFlags(args []string) (*benchFlags, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var b benchFlags
	fs.StringVar(&b.orderer, "orderer", "127.0.0.1:7050", "orderer address (host:port)")
	fs.StringVar(&b.orderer, "o", "127.0.0.1:7050", "shorthand for --orderer")
	fs.StringVar(&b.channel, "channel", "", "channel ID (required)")
	fs.StringVar(&b.channel, "c", "", "shorthand for --channel")
	fs.StringVar(&b.mspDir, "msp-dir", os.Getenv("CORE_PEER_MSPCONFIGPATH"), "signing identity's MSP directory (default $CORE_PEER_MSPCONFIGPATH)")
	fs.StringVar(&b.mspID, "msp-id", os.Getenv("CORE_PEER_LOCALMSPID"), "signing identity's MSP ID (default $CORE_PEER_LOCALMSPID)")
	fs.StringVar(&b.tlsCA, "tls-ca", "", "PEM file of the orderer's TLS root CA (enables TLS)")
	fs.StringVar(&b.tlsCert, "tls-cert", "", "client TLS certificate (PEM) for mutual TLS")
	fs.StringVar(&b.tlsKey, "tls-key", "", "client TLS private key (PEM) for mutual TLS")
	fs.StringVar(&b.tlsServerName, "tls-server-name", "", "name expected in the orderer's TLS certificate (default: the host of --orderer)")
	fs.IntVar(&b.streams, "streams", 1, "Broadcast streams, each on its own connection")
	fs.Uint64Var(&b.count, "count", 0, fmt.Sprintf("envelopes to send (default %d when --duration is not given either)", defaultBenchCount))
	fs.DurationVar(&b.duration, "duration", 0, "stop sending after this long (whichever of --count and --duration comes first)")
	fs.IntVar(&b.size, "size", 1024, "random payload data bytes per envelope")
	fs.Float64Var(&b.rate, "rate", 0, "offered envelopes per second over all streams (0: as fast as possible)")
	fs.BoolVar(&b.signOnTheFly, "sign-on-the-fly", false, "sign each envelope when sending it instead of before the clock starts (prepared envelopes are all held in memory, about size+700 bytes each, and dropped as they are sent; for long runs sign on the fly)")
	fs.BoolVar(&b.deliver, "deliver", true, "follow the chain from its newest block and measure send-to-delivery latency")
	fs.IntVar(&b.maxInFlight, "max-in-flight", 1000, "unanswered envelopes per stream")
	fs.DurationVar(&b.drainTimeout, "drain-timeout", 10*time.Second, "at the end, how long to wait for a block while acknowledged envelopes are undelivered")
	fs.StringVar(&b.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), on or off")
	fs.StringVar(&b.jsonOut, "json", "-", "where the final JSON line goes: - for stdout, or a file it is appended to")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	switch {
	case b.channel == "":
		return nil, usageError{"--channel is required"}
	case b.mspDir == "" || b.mspID == "":
		return nil, usageError{"--msp-dir and --msp-id (or CORE_PEER_MSPCONFIGPATH and CORE_PEER_LOCALMSPID) are required"}
	case b.streams < 1:
		return nil, usageError{"--streams must be at least 1"}
	case b.size < 0:
		return nil, usageError{"--size must not be negative"}
	case b.rate < 0:
		return nil, usageError{"--rate must not be negative"}
	case b.duration < 0:
		return nil, usageError{"--duration must not be negative"}
	case (b.tlsCert == "") != (b.tlsKey == ""):
		return nil, usageError{"--tls-cert and --tls-key go together"}
	case b.tlsCert != "" && b.tlsCA == "":
		return nil, usageError{"--tls-cert needs --tls-ca"}
	case b.progress != "auto" && b.progress != "on" && b.progress != "off":
		return nil, usageError{fmt.Sprintf("--progress %q: want auto, on or off", b.progress)}
	}
	if b.count == 0 && b.duration == 0 {
		b.count = defaultBenchCount
	}
	if !b.signOnTheFly && b.count == 0 && b.rate == 0 {
		return nil, usageError{"a run bounded by --duration alone needs --sign-on-the-fly, --rate or --count (envelopes are signed before the clock starts)"}
	}
	if _, _, err := net.SplitHostPort(b.orderer); err != nil {
		return nil, usageError{fmt.Sprintf("--orderer %q: %v", b.orderer, err)}
	}
	return &b, nil
}

// tlsConfig is nil without --tls-ca; certHash is the SHA-256 of the client certificate.
func (b *benchFlags) tlsConfig() (tc *tls.Config, certHash []byte, err error) {
	if b.tlsCA == "" {
		return nil, nil, nil
	}
	pem, err := os.ReadFile(b.tlsCA)
	if err != nil {
		return nil, nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", b.tlsCA)
	}
	name := b.tlsServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(b.orderer)
	}
	tc = &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
	if b.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(b.tlsCert, b.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
		h := sha256.Sum256(pair.Certificate[0])
		certHash = h[:]
	}
	return tc, certHash, nil
}

func runBench(ctx context.Context, args []string) error {
	b, err := parseBenchFlags(args)
	if err != nil {
		return err
	}
	signer, err := msp.LoadSigner(b.mspDir, b.mspID)
	if err != nil {
		return err
	}
	tc, certHash, err := b.tlsConfig()
	if err != nil {
		return err
	}
	cfg := loadgen.Config{
		Dial:         func(ctx context.Context) (*grpc.ClientConn, error) { return client.Dial(ctx, b.orderer, tc) },
		Signer:       signer,
		Channel:      b.channel,
		TLSCertHash:  certHash,
		Streams:      b.streams,
		Count:        b.count,
		Duration:     b.duration,
		Size:         b.size,
		Rate:         b.rate,
		SignOnTheFly: b.signOnTheFly,
		Deliver:      b.deliver,
		MaxInFlight:  b.maxInFlight,
		DrainTimeout: b.drainTimeout,
	}
	var bar *progressBar
	if b.progress == "on" || (b.progress == "auto" && isTerminal(os.Stderr)) {
		bar = &progressBar{w: os.Stderr}
		cfg.Progress = bar.show
		cfg.ProgressInterval = 200 * time.Millisecond
	}
	rep, err := loadgen.Run(ctx, cfg)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	rep.Orderer = b.orderer
	if err := writeReport(b.jsonOut, rep); err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("the run had errors: %s", strings.Join(rep.Errors, "; "))
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

func writeReport(path string, rep *loadgen.Report) error {
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if path == "-" || path == "" {
		_, err = os.Stdout.Write(line)
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("--json: %w", err)
	}
	return f.Close()
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar redraws one line of stderr.
type progressBar struct {
	w     io.Writer
	drawn bool
}

const barWidth = 24

func (p *progressBar) show(s loadgen.Progress) {
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(s))
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// progressLine is the text of the bar: the fraction done (by count, or by time when the run
// is bounded by duration alone, or whichever is further), then the counters.
func progressLine(s loadgen.Progress) string {
	frac := 0.0
	if s.Phase == "preparing" {
		if s.Total > 0 {
			frac = float64(s.Prepared) / float64(s.Total)
		}
	} else {
		if s.Total > 0 {
			frac = float64(s.Sent) / float64(s.Total)
		}
		if s.Duration > 0 {
			frac = max(frac, float64(s.Elapsed)/float64(s.Duration))
		}
		if s.Phase == "draining" || s.Phase == "done" {
			frac = 1
		}
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * barWidth)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", barWidth-n)
	if s.Phase == "preparing" {
		return fmt.Sprintf("%-9s [%s] %3.0f%%  %d/%d envelopes signed", s.Phase, bar, frac*100, s.Prepared, s.Total)
	}
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Acked) / s.Elapsed.Seconds()
	}
	line := fmt.Sprintf("%-9s [%s] %3.0f%%  %5.1fs  sent %d  acked %d (%.0f/s)  delivered %d",
		s.Phase, bar, frac*100, s.Elapsed.Seconds(), s.Sent, s.Acked, rate, s.Delivered)
	if s.Refused > 0 {
		line += fmt.Sprintf("  refused %d", s.Refused)
	}
	return line
}
