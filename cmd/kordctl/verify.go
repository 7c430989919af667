package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/chainverify"
	"github.com/kordhq/kord/orderer/client"
)

func init() {
	register("verify", "check a chain (hash links, data hashes, orderer signatures) and compare the chains of several orderers", runVerify)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func runVerify(ctx context.Context, args []string) error {
	fs := newFlagSet("verify", "(--dir DIR... | --in - | --orderer HOST:PORT... --channel ID --msp-dir DIR --msp-id ID) [--same-height]")
	var (
		of         ordererFlags
		dirs       listFlag
		orderers   listFlag
		in         string
		channel    string
		sameHeight bool
		noSigs     bool
	)
	fs.Var(&dirs, "dir", "directory of block files <channel>_<n>.block (as written by kordctl fetch or peer channel fetch); repeat to compare copies")
	fs.StringVar(&in, "in", "", "- to read a block stream (kordctl fetch --out -) from stdin")
	fs.Var(&orderers, "orderer", "orderer to fetch the chain from (host:port); repeat (or separate with commas) to compare orderers")
	fs.StringVar(&channel, "channel", "", "channel ID (required with --orderer; picks the channel in a --dir holding several)")
	fs.BoolVar(&sameHeight, "same-height", false, "fail unless every copy has the same number of blocks")
	fs.BoolVar(&noSigs, "no-signatures", false, "skip the orderer signature check")
	of.register(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	sources := 0
	for _, set := range []bool{len(dirs) > 0, in != "", len(orderers) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return usageError{"give exactly one of --dir, --in and --orderer"}
	}
	if in != "" && in != "-" {
		return usageError{"--in takes only - (stdin); use --dir for block files"}
	}
	opts := chainverify.Options{}
	if noSigs {
		opts.SignatureCheck = chainverify.NoSignatureCheck
	}

	var copies []chainverify.Copy
	var failed []string
	add := func(name string, blks []*cb.Block, err error) {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			fmt.Printf("%s: FAILED: %v\n", name, err)
			return
		}
		sum, verr := chainverify.Chain(blks, opts)
		if verr != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, verr))
			fmt.Printf("%s: FAILED after %d good blocks: %v\n", name, sum.Blocks, verr)
		} else if sum.Blocks > 0 {
			fmt.Printf("%s: channel %s: %d blocks (%d..%d) verified: numbering, hash links, data hashes, orderer signatures (%d config blocks)\n",
				name, sum.Channel, sum.Blocks, sum.First, sum.Last, sum.ConfigBlocks)
		} else {
			fmt.Printf("%s: no blocks\n", name)
		}
		copies = append(copies, chainverify.Copy{Name: name, Blocks: blks})
	}

	switch {
	case len(dirs) > 0:
		for _, d := range dirs {
			id, blks, err := chainverify.ReadBlockDir(d, channel)
			if channel == "" && err == nil {
				channel = id
			}
			add(d, blks, err)
		}
	case in != "":
		r := chainverify.NewStreamReader(os.Stdin)
		var blks []*cb.Block
		var err error
		for {
			var b *cb.Block
			if b, err = r.Read(); err != nil {
				break
			}
			blks = append(blks, b)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		add("stdin", blks, err)
	default:
		if channel == "" {
			return usageError{"--channel is required with --orderer"}
		}
		s, err := of.signer()
		if err != nil {
			return err
		}
		ctx, cancel := of.context(ctx)
		defer cancel()
		for _, addr := range orderers {
			var blks []*cb.Block
			err := of.fetchFrom(ctx, addr, s, client.FetchOptions{
				Channel: channel, Start: client.Oldest(), Stop: client.Newest(), Wait: true,
			}, func(b *cb.Block) error {
				blks = append(blks, b)
				return nil
			})
			add(addr, blks, err)
		}
	}

	if len(copies) > 1 {
		n, err := chainverify.Compare(copies)
		if err != nil {
			failed = append(failed, err.Error())
			fmt.Printf("chains DIFFER: %v (the first %d blocks are identical)\n", err, n)
		} else {
			heights := make([]string, len(copies))
			same := true
			for i, c := range copies {
				heights[i] = fmt.Sprintf("%s=%d", c.Name, len(c.Blocks))
				same = same && len(c.Blocks) == len(copies[0].Blocks)
			}
			if same {
				fmt.Printf("chains identical: %d copies, %d blocks each (headers, data, Kafka metadata, last config)\n", len(copies), n)
			} else {
				fmt.Printf("chains identical over their first %d blocks; heights differ: %s\n", n, strings.Join(heights, " "))
				if sameHeight {
					failed = append(failed, "heights differ: "+strings.Join(heights, " "))
				}
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d problem(s): %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}
