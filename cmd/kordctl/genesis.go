package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/golang/protobuf/proto"

	"github.com/kordhq/kord/orderer/genesis"
)

func init() {
	register("genesis", "write a system-channel genesis block, or (channel-tx) a channel-creation tx, from a network spec", runGenesis)
}

func runGenesis(_ context.Context, args []string) error {
	if len(args) > 0 && args[0] == "channel-tx" {
		return runChannelTx(args[1:])
	}
	fs := flag.NewFlagSet("genesis", flag.ContinueOnError)
	spec := fs.String("spec", "network.yaml", "network spec (YAML; see orderer/genesis.Spec)")
	out := fs.String("out", "genesis.block", "where to write the genesis block")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	p, err := genesis.LoadSpec(*spec)
	if err != nil {
		return err
	}
	blk, err := genesis.SystemChannelBlock(p)
	if err != nil {
		return err
	}
	if err := writeProto(*out, blk); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (system channel genesis block)\n", *out)
	return nil
}

func runChannelTx(args []string) error {
	fs := flag.NewFlagSet("genesis channel-tx", flag.ContinueOnError)
	spec := fs.String("spec", "network.yaml", "network spec (YAML)")
	channel := fs.String("channel", "", "channel to create (required)")
	out := fs.String("out", "", "where to write the tx (default CHANNEL.tx)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *channel == "" {
		return usageError{"--channel is required"}
	}
	if *out == "" {
		*out = *channel + ".tx"
	}
	p, err := genesis.LoadSpec(*spec)
	if err != nil {
		return err
	}
	env, err := genesis.ChannelCreateTx(p, *channel)
	if err != nil {
		return err
	}
	if err := writeProto(*out, env); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (unsigned channel-creation tx for %s)\n", *out, *channel)
	return nil
}

func writeProto(path string, m proto.Message) error {
	raw, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
