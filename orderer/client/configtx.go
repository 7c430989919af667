package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang/protobuf/proto"
	fconfigtx "github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/blocks"
)

// ConfigUpdateEnvelope reads the ConfigUpdateEnvelope of a CONFIG_UPDATE envelope (as
// configtxgen and configtxlator write them).
func ConfigUpdateEnvelope(env *cb.Envelope) (*cb.ConfigUpdateEnvelope, string, error) {
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, "", fmt.Errorf("config update: payload: %w", err)
	}
	if payload.Header == nil {
		return nil, "", errors.New("config update: payload has no header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		return nil, "", fmt.Errorf("config update: channel header: %w", err)
	}
	if cb.HeaderType(chdr.Type) != cb.HeaderType_CONFIG_UPDATE {
		return nil, "", fmt.Errorf("config update: header type is %s, want CONFIG_UPDATE", cb.HeaderType(chdr.Type))
	}
	cue := &cb.ConfigUpdateEnvelope{}
	if err := proto.Unmarshal(payload.Data, cue); err != nil {
		return nil, "", fmt.Errorf("config update: %w", err)
	}
	return cue, chdr.ChannelId, nil
}

// AddConfigSignature signs a config update as s, the way `peer channel signconfigtx` does:
// the signature covers a fresh signature header followed by the marshalled ConfigUpdate.
func AddConfigSignature(cue *cb.ConfigUpdateEnvelope, s Signer) error {
	sh, err := s.NewSignatureHeader()
	if err != nil {
		return err
	}
	shb, err := proto.Marshal(sh)
	if err != nil {
		return err
	}
	sig, err := s.Sign(append(append([]byte{}, shb...), cue.ConfigUpdate...))
	if err != nil {
		return err
	}
	cue.Signatures = append(cue.Signatures, &cb.ConfigSignature{SignatureHeader: shb, Signature: sig})
	return nil
}

// SignConfigUpdate adds a config signature by each of signers to a CONFIG_UPDATE envelope and
// wraps the result in a new envelope signed by the first, ready to broadcast (what `peer
// channel create` and `peer channel update` send).
func SignConfigUpdate(env *cb.Envelope, signers ...Signer) (*cb.Envelope, error) {
	if len(signers) == 0 {
		return nil, errors.New("config update: no signer")
	}
	cue, channelID, err := ConfigUpdateEnvelope(env)
	if err != nil {
		return nil, err
	}
	for _, s := range signers {
		if err := AddConfigSignature(cue, s); err != nil {
			return nil, err
		}
	}
	data, err := proto.Marshal(cue)
	if err != nil {
		return nil, err
	}
	return Envelope(signers[0], cb.HeaderType_CONFIG_UPDATE, channelID, data)
}

// NewConfigUpdateEnvelope wraps a marshalled ConfigUpdate in an unsigned CONFIG_UPDATE
// envelope, as configtxlator's output is wrapped before signing.
func NewConfigUpdateEnvelope(channelID string, update []byte) (*cb.Envelope, error) {
	data, err := proto.Marshal(&cb.ConfigUpdateEnvelope{ConfigUpdate: update})
	if err != nil {
		return nil, err
	}
	chdr, err := proto.Marshal(&cb.ChannelHeader{Type: int32(cb.HeaderType_CONFIG_UPDATE), ChannelId: channelID})
	if err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr}, Data: data})
	if err != nil {
		return nil, err
	}
	return &cb.Envelope{Payload: payload}, nil
}

// Broadcast sends one envelope and returns the orderer's response.
func Broadcast(ctx context.Context, conn *grpc.ClientConn, env *cb.Envelope) (*ab.BroadcastResponse, error) {
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(env); err != nil {
		return nil, err
	}
	return stream.Recv()
}

// FetchBlock delivers one block: n, or the newest when newest is set.
func FetchBlock(ctx context.Context, conn *grpc.ClientConn, s Signer, channelID string, n uint64, newest bool) (*cb.Block, error) {
	pos := Specified(n)
	if newest {
		pos = Newest()
	}
	req, err := SeekEnvelope(s, channelID, pos, pos, ab.SeekInfo_FAIL_IF_NOT_READY)
	if err != nil {
		return nil, err
	}
	var got *cb.Block
	status, err := Deliver(ctx, conn, req, func(b *cb.Block) error { got = b; return nil })
	if err != nil {
		return nil, fmt.Errorf("deliver on %s: %w", channelID, err)
	}
	if status != cb.Status_SUCCESS || got == nil {
		return nil, fmt.Errorf("deliver on %s: status %s", channelID, status)
	}
	return got, nil
}

// FetchConfigBlock delivers a channel's current config block: the newest block's LAST_CONFIG.
func FetchConfigBlock(ctx context.Context, conn *grpc.ClientConn, s Signer, channelID string) (*cb.Block, error) {
	newest, err := FetchBlock(ctx, conn, s, channelID, 0, true)
	if err != nil {
		return nil, err
	}
	idx, err := blocks.LastConfigIndex(newest)
	if err != nil {
		return nil, fmt.Errorf("block %d of %s: %w", newest.Header.Number, channelID, err)
	}
	if idx == newest.Header.Number {
		return newest, nil
	}
	return FetchBlock(ctx, conn, s, channelID, idx, false)
}

// WaitBlock delivers block n of a channel, retrying every interval until ctx ends, as `peer
// channel create` waits for a new channel's block 0 while the orderers create it.
func WaitBlock(ctx context.Context, conn *grpc.ClientConn, s Signer, channelID string, n uint64, interval time.Duration) (*cb.Block, error) {
	for {
		b, err := FetchBlock(ctx, conn, s, channelID, n, false)
		if err == nil {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for block %d of %s: %w (last error: %v)", n, channelID, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// ComputeUpdate builds the unsigned CONFIG_UPDATE envelope that turns config into what edit
// makes of it (as `configtxlator compute_update` does), using fabric-config.
func ComputeUpdate(config *cb.Config, channelID string, edit func(*fconfigtx.ConfigTx) error) (*cb.Envelope, error) {
	tx := fconfigtx.New(config)
	if err := edit(&tx); err != nil {
		return nil, err
	}
	update, err := tx.ComputeMarshaledUpdate(channelID)
	if err != nil {
		return nil, fmt.Errorf("computing the config update of %s: %w", channelID, err)
	}
	return NewConfigUpdateEnvelope(channelID, update)
}
