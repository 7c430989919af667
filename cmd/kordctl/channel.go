package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	fconfigtx "github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/msp"
)

func init() {
	register("channel", "create, update or fetch a channel (as `peer channel ...` does)", runChannel)
}

// connFlags are the flags every channel sub-command shares: where the orderer is and who
// signs.
type connFlags struct {
	orderer, channel, mspDir, mspID, tlsCA string
	extraSigners                           multiFlag
	timeout                                time.Duration
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.orderer, "orderer", "127.0.0.1:7050", "orderer address (host:port)")
	fs.StringVar(&c.orderer, "o", "127.0.0.1:7050", "shorthand for --orderer")
	fs.StringVar(&c.channel, "channel", "", "channel ID (required)")
	fs.StringVar(&c.channel, "c", "", "shorthand for --channel")
	fs.StringVar(&c.mspDir, "msp-dir", os.Getenv("CORE_PEER_MSPCONFIGPATH"), "signing identity's MSP directory (default $CORE_PEER_MSPCONFIGPATH)")
	fs.StringVar(&c.mspID, "msp-id", os.Getenv("CORE_PEER_LOCALMSPID"), "signing identity's MSP ID (default $CORE_PEER_LOCALMSPID)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM file of the orderer's TLS root CA (enables TLS)")
	fs.Var(&c.extraSigners, "sign-with", "additional config signature by MSPDIR:MSPID (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "overall timeout")
}

func (c *connFlags) check() error {
	if c.channel == "" {
		return usageError{"--channel is required"}
	}
	if c.mspDir == "" || c.mspID == "" {
		return usageError{"--msp-dir and --msp-id (or CORE_PEER_MSPCONFIGPATH and CORE_PEER_LOCALMSPID) are required"}
	}
	return nil
}

func (c *connFlags) signer() (*msp.Signer, error) { return msp.LoadSigner(c.mspDir, c.mspID) }

// configSigners are the identity itself, then every --sign-with identity.
func (c *connFlags) configSigners() ([]client.Signer, error) {
	s, err := c.signer()
	if err != nil {
		return nil, err
	}
	out := []client.Signer{s}
	for _, spec := range c.extraSigners {
		// The MSP ID follows the last colon, so directories may contain colons.
		i := strings.LastIndex(spec, ":")
		if i <= 0 || i == len(spec)-1 {
			return nil, usageError{fmt.Sprintf("--sign-with %q: want MSPDIR:MSPID", spec)}
		}
		extra, err := msp.LoadSigner(spec[:i], spec[i+1:])
		if err != nil {
			return nil, err
		}
		out = append(out, extra)
	}
	return out, nil
}

func (c *connFlags) dial(ctx context.Context) (*grpc.ClientConn, error) {
	var tc *tls.Config
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate found", c.tlsCA)
		}
		host, _, err := net.SplitHostPort(c.orderer)
		if err != nil {
			return nil, fmt.Errorf("--orderer %q: %w", c.orderer, err)
		}
		tc = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return client.Dial(ctx, c.orderer, tc)
}

func runChannel(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"usage: kordctl channel create|update|fetch [flags]"}
	}
	switch args[0] {
	case "create":
		return channelCreate(ctx, args[1:])
	case "update":
		return channelUpdate(ctx, args[1:])
	case "fetch":
		return channelFetch(ctx, args[1:])
	}
	return usageError{fmt.Sprintf("unknown channel sub-command %q (want create, update or fetch)", args[0])}
}

// broadcastConfig signs a CONFIG_UPDATE envelope with every signer and broadcasts it. A
// SERVICE_UNAVAILABLE answer (e.g. a channel created a moment ago whose chain is still
// connecting to Kafka) is retried until ctx ends; any other refusal is final.
func broadcastConfig(ctx context.Context, conn *grpc.ClientConn, env *cb.Envelope, signers []client.Signer) error {
	for {
		signed, err := client.SignConfigUpdate(env, signers...)
		if err != nil {
			return err
		}
		resp, err := client.Broadcast(ctx, conn, signed)
		if err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
		switch resp.Status {
		case cb.Status_SUCCESS:
			return nil
		case cb.Status_SERVICE_UNAVAILABLE:
			select {
			case <-ctx.Done():
				return fmt.Errorf("orderer unavailable: %s (gave up: %v)", resp.Info, ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		default:
			return fmt.Errorf("orderer refused the config update: %s: %s", resp.Status, resp.Info)
		}
	}
}

func readEnvelope(path string) (*cb.Envelope, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(raw, env); err != nil {
		return nil, fmt.Errorf("%s: not an envelope: %w", path, err)
	}
	return env, nil
}

func channelCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("channel create", flag.ContinueOnError)
	var c connFlags
	c.register(fs)
	file := fs.String("file", "", "channel-creation tx (configtxgen -outputCreateChannelTx or kordctl genesis channel-tx)")
	fs.StringVar(file, "f", "", "shorthand for --file")
	out := fs.String("out", "", "where to write block 0 (default CHANNEL.block)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if err := c.check(); err != nil {
		return err
	}
	if *file == "" {
		return usageError{"--file is required"}
	}
	if *out == "" {
		*out = c.channel + ".block"
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	env, err := readEnvelope(*file)
	if err != nil {
		return err
	}
	if _, id, err := client.ConfigUpdateEnvelope(env); err != nil {
		return err
	} else if id != c.channel {
		return fmt.Errorf("%s creates channel %q, not %q", *file, id, c.channel)
	}
	signers, err := c.configSigners()
	if err != nil {
		return err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := broadcastConfig(ctx, conn, env, signers); err != nil {
		return err
	}
	b, err := client.WaitBlock(ctx, conn, signers[0], c.channel, 0, 200*time.Millisecond)
	if err != nil {
		return err
	}
	if err := writeProto(*out, b); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "channel %s created; block 0 written to %s\n", c.channel, *out)
	return nil
}

func channelUpdate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("channel update", flag.ContinueOnError)
	var c connFlags
	c.register(fs)
	file := fs.String("file", "", "CONFIG_UPDATE envelope to sign and send (as `peer channel update -f`)")
	fs.StringVar(file, "f", "", "shorthand for --file")
	maxCount := fs.Uint("batch-size", 0, "set Orderer/BatchSize MaxMessageCount")
	absMax := fs.Uint("absolute-max-bytes", 0, "set Orderer/BatchSize AbsoluteMaxBytes")
	prefMax := fs.Uint("preferred-max-bytes", 0, "set Orderer/BatchSize PreferredMaxBytes")
	timeout := fs.Duration("batch-timeout", 0, "set Orderer/BatchTimeout")
	var anchors multiFlag
	fs.Var(&anchors, "anchor-peer", "add an anchor peer ORG=HOST:PORT (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if err := c.check(); err != nil {
		return err
	}
	build := *maxCount != 0 || *absMax != 0 || *prefMax != 0 || *timeout != 0 || len(anchors) > 0
	if (*file == "") == !build {
		return usageError{"give either --file or at least one of --batch-size, --batch-timeout, --absolute-max-bytes, --preferred-max-bytes, --anchor-peer"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	signers, err := c.configSigners()
	if err != nil {
		return err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var env *cb.Envelope
	if *file != "" {
		if env, err = readEnvelope(*file); err != nil {
			return err
		}
	} else {
		blk, err := client.FetchConfigBlock(ctx, conn, signers[0], c.channel)
		if err != nil {
			return err
		}
		cur, err := channelconfig.FromBlock(blk)
		if err != nil {
			return err
		}
		env, err = client.ComputeUpdate(cur.Config, c.channel, func(tx *fconfigtx.ConfigTx) error {
			return applyEdits(tx, uint32(*maxCount), uint32(*absMax), uint32(*prefMax), *timeout, anchors)
		})
		if err != nil {
			return err
		}
	}
	if err := broadcastConfig(ctx, conn, env, signers); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "config update for %s accepted by the orderer\n", c.channel)
	return nil
}

func applyEdits(tx *fconfigtx.ConfigTx, maxCount, absMax, prefMax uint32, timeout time.Duration, anchors []string) error {
	bs := tx.Orderer().BatchSize()
	if maxCount != 0 {
		if err := bs.SetMaxMessageCount(maxCount); err != nil {
			return err
		}
	}
	if absMax != 0 {
		if err := bs.SetAbsoluteMaxBytes(absMax); err != nil {
			return err
		}
	}
	if prefMax != 0 {
		if err := bs.SetPreferredMaxBytes(prefMax); err != nil {
			return err
		}
	}
	if timeout != 0 {
		if err := tx.Orderer().SetBatchTimeout(timeout); err != nil {
			return err
		}
	}
	for _, a := range anchors {
		org, hostport, ok := strings.Cut(a, "=")
		host, portStr, err := net.SplitHostPort(hostport)
		port, perr := strconv.Atoi(portStr)
		if !ok || err != nil || perr != nil {
			return usageError{fmt.Sprintf("--anchor-peer %q: want ORG=HOST:PORT", a)}
		}
		o := tx.Application().Organization(org)
		if o == nil {
			return fmt.Errorf("--anchor-peer: organization %s is not in the channel's Application group", org)
		}
		if err := o.AddAnchorPeer(fconfigtx.Address{Host: host, Port: port}); err != nil {
			return err
		}
	}
	return nil
}

func channelFetch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("channel fetch", flag.ContinueOnError)
	var c connFlags
	c.register(fs)
	out := fs.String("out", "", "output file (default CHANNEL_WHICH.block)")
	// Allow `channel fetch newest -c ch` as peer does: the block selector may come first.
	which := "newest"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		which, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		which = fs.Arg(0)
	}
	if err := c.check(); err != nil {
		return err
	}
	if *out == "" {
		*out = c.channel + "_" + which + ".block"
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.signer()
	if err != nil {
		return err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var b *cb.Block
	switch which {
	case "newest":
		b, err = client.FetchBlock(ctx, conn, s, c.channel, 0, true)
	case "oldest":
		b, err = client.FetchBlock(ctx, conn, s, c.channel, 0, false)
	case "config":
		b, err = client.FetchConfigBlock(ctx, conn, s, c.channel)
	default:
		n, perr := strconv.ParseUint(which, 10, 64)
		if perr != nil {
			return usageError{fmt.Sprintf("block %q: want newest, oldest, config or a number", which)}
		}
		b, err = client.FetchBlock(ctx, conn, s, c.channel, n, false)
	}
	if err != nil {
		return err
	}
	if b == nil {
		return errors.New("no block received")
	}
	if err := writeProto(*out, b); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "block %d of %s written to %s\n", b.Header.Number, c.channel, *out)
	return nil
}
