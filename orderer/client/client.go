// Package client builds what a Fabric client sends to an orderer — signed envelopes,
// Deliver seek requests — and reads what comes back. It is used by kordctl, the embedded
// development setup and the tests; Fabric's own peers and SDKs need nothing from it.
package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/golang/protobuf/ptypes/timestamp"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Signer is a client identity.
type Signer interface {
	Serialize() []byte
	Sign(msg []byte) ([]byte, error)
	NewSignatureHeader() (*cb.SignatureHeader, error)
}

// Envelope builds a signed envelope of type t on channelID carrying data. The transaction
// ID is derived from the nonce and creator as Fabric derives it.
func Envelope(s Signer, t cb.HeaderType, channelID string, data []byte) (*cb.Envelope, error) {
	return BoundEnvelope(s, t, channelID, data, nil)
}

// BoundEnvelope is Envelope with the SHA-256 of the client's TLS certificate in the channel
// header, which an orderer requiring client TLS certificates checks Deliver requests against.
func BoundEnvelope(s Signer, t cb.HeaderType, channelID string, data, tlsCertHash []byte) (*cb.Envelope, error) {
	sh, err := s.NewSignatureHeader()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(append(append([]byte{}, sh.Nonce...), sh.Creator...))
	now := time.Now()
	return SignedEnvelope(s, &cb.ChannelHeader{
		Type:        int32(t),
		ChannelId:   channelID,
		TxId:        hex.EncodeToString(h[:]),
		Timestamp:   &timestamp.Timestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())},
		TlsCertHash: tlsCertHash,
	}, sh, data)
}

// SignedEnvelope signs data under the given headers as they are, for callers that build
// their own channel header (the orderer's config transactions have no transaction ID).
func SignedEnvelope(s Signer, chdr *cb.ChannelHeader, sh *cb.SignatureHeader, data []byte) (*cb.Envelope, error) {
	chdrb, err := proto.Marshal(chdr)
	if err != nil {
		return nil, err
	}
	shb, err := proto.Marshal(sh)
	if err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdrb, SignatureHeader: shb}, Data: data})
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(payload)
	if err != nil {
		return nil, err
	}
	return &cb.Envelope{Payload: payload, Signature: sig}, nil
}

// TxID returns the transaction ID of an envelope built by Envelope (or any Fabric client).
func TxID(env *cb.Envelope) (string, error) {
	p := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, p); err != nil || p.Header == nil {
		return "", errors.New("envelope has no payload header")
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(p.Header.ChannelHeader, chdr); err != nil {
		return "", err
	}
	return chdr.TxId, nil
}

// Oldest, Newest and Specified are seek positions.
func Oldest() *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Oldest{Oldest: &ab.SeekOldest{}}}
}

// Newest is the newest block at the time of the request.
func Newest() *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Newest{Newest: &ab.SeekNewest{}}}
}

// Specified is block n.
func Specified(n uint64) *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Specified{Specified: &ab.SeekSpecified{Number: n}}}
}

// MaxBlock is the stop position of a request that follows the chain for ever.
const MaxBlock = ^uint64(0)

// SeekEnvelope builds a signed Deliver request.
func SeekEnvelope(s Signer, channelID string, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior) (*cb.Envelope, error) {
	return BoundSeekEnvelope(s, channelID, start, stop, behavior, nil)
}

// BoundSeekEnvelope is SeekEnvelope bound to the client's TLS certificate (see BoundEnvelope).
func BoundSeekEnvelope(s Signer, channelID string, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior, tlsCertHash []byte) (*cb.Envelope, error) {
	data, err := proto.Marshal(&ab.SeekInfo{Start: start, Stop: stop, Behavior: behavior})
	if err != nil {
		return nil, err
	}
	return BoundEnvelope(s, cb.HeaderType_DELIVER_SEEK_INFO, channelID, data, tlsCertHash)
}

// Dial connects to an orderer; tc nil means plaintext.
func Dial(ctx context.Context, addr string, tc *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(100<<20), grpc.MaxCallSendMsgSize(100<<20)))
	if err != nil {
		return nil, fmt.Errorf("dialling orderer %s: %w", addr, err)
	}
	return conn, nil
}

// Deliver sends one seek request and collects blocks until the final status. fn, if set, is
// called for each block as it arrives, and may stop early by returning an error.
func Deliver(ctx context.Context, conn *grpc.ClientConn, req *cb.Envelope, fn func(*cb.Block) error) (cb.Status, error) {
	stream, err := ab.NewAtomicBroadcastClient(conn).Deliver(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(req); err != nil {
		return 0, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return 0, errors.New("deliver stream ended without a status")
		}
		if err != nil {
			return 0, err
		}
		switch t := resp.Type.(type) {
		case *ab.DeliverResponse_Status:
			return t.Status, nil
		case *ab.DeliverResponse_Block:
			if fn != nil {
				if err := fn(t.Block); err != nil {
					return 0, err
				}
			}
		}
	}
}
