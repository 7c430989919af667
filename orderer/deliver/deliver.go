// Package deliver owns the Deliver side of Fabric's AtomicBroadcast service: a client sends a
// signed SeekInfo, the orderer streams the blocks it asks for and ends with a status. Blocks
// already in the ledger are served whatever the state of Kafka; only blocks not yet written
// wait (BLOCK_UNTIL_READY) or are refused (FAIL_IF_NOT_READY).
package deliver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/kordhq/kord/orderer/msgprocessor"
)

// Chain is the read side of one channel's ledger.
type Chain interface {
	Height() uint64
	// WaitRawBlock returns the stored encoding of block n (a marshalled common.Block),
	// waiting until it is written or ctx ends. It is sent to the client as is.
	WaitRawBlock(ctx context.Context, n uint64) ([]byte, error)
}

// Registrar finds channels and checks read access.
type Registrar interface {
	// DeliverChannel returns the chain of a channel (ErrChannelNotFound if there is none).
	DeliverChannel(channelID string) (Chain, error)
	// Authorize returns the access check of a signed request for the channel it names.
	Authorize(env *cb.Envelope, p *msgprocessor.Parsed) (Access, error)
}

// Access is a request's read permission. Check is called when the request arrives and again
// for each block, once the block is read and before it is sent: it fails once the client's
// certificate has expired, or when a config change took the client's read permission away,
// which ends the stream with FORBIDDEN.
type Access interface {
	Check() error
}

// Handler serves Deliver streams.
type Handler struct {
	Registrar Registrar
	Log       *slog.Logger
	// Stopping, when closed, ends every stream: a request waiting for a block that is not
	// written yet gets SERVICE_UNAVAILABLE, so the server can shut down without waiting for
	// clients to leave.
	Stopping <-chan struct{}
	// TimeWindow bounds how far a request's timestamp may be from the orderer's clock
	// (General.Authentication.TimeWindow); zero turns the check off.
	TimeWindow time.Duration
	// MutualTLS requires requests to carry the hash of the client's TLS certificate, as
	// Fabric does when client authentication is required.
	MutualTLS bool
	Metrics   Metrics // may be nil
}

// Handle serves requests on one stream until the client closes it or ctx ends.
func (h *Handler) Handle(srv ab.AtomicBroadcast_DeliverServer) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	if h.Metrics != nil {
		h.Metrics.StreamOpened()
		defer h.Metrics.StreamClosed()
	}
	if h.Stopping != nil {
		go func() {
			select {
			case <-h.Stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	for {
		env, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		status, err := h.serve(ctx, srv, env)
		if err != nil {
			// The stream is gone (client left, orderer stopping): nothing more to send.
			return err
		}
		if status != cb.Status_SUCCESS && h.Log != nil {
			h.Log.Debug("deliver request ended", "status", status.String())
		}
		if err := srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Status{Status: status}}); err != nil {
			return err
		}
	}
}

// request is a validated SeekInfo.
type request struct {
	channel        string
	chain          Chain
	access         Access
	start, stop    uint64
	failIfNotReady bool
}

func (h *Handler) serve(ctx context.Context, srv ab.AtomicBroadcast_DeliverServer, env *cb.Envelope) (status cb.Status, err error) {
	req, status, reason := h.parse(ctx, env)
	if req != nil && h.Metrics != nil {
		h.Metrics.RequestReceived(req.channel)
		defer func() {
			if err == nil {
				h.Metrics.RequestCompleted(req.channel, status)
			}
		}()
	}
	if status != cb.Status_SUCCESS {
		if h.Log != nil {
			h.Log.Warn("deliver refused", "status", status.String(), "reason", reason)
		}
		return status, nil
	}
	for n := req.start; n <= req.stop; n++ {
		if req.failIfNotReady && n >= req.chain.Height() {
			return cb.Status_NOT_FOUND, nil
		}
		raw, err := req.chain.WaitRawBlock(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				if isClosed(h.Stopping) {
					return cb.Status_SERVICE_UNAVAILABLE, nil
				}
				return 0, ctx.Err()
			}
			if h.Log != nil {
				h.Log.Warn("deliver read failed", "block", n, "err", err)
			}
			return cb.Status_SERVICE_UNAVAILABLE, nil
		}
		// As in Fabric, access is re-checked with the block at hand, just before sending it: a
		// block written after the client's certificate expired, or after a config change took
		// its read access away (the config block that did so included), is not sent.
		if err := req.access.Check(); err != nil {
			if h.Log != nil {
				h.Log.Warn("deliver client no longer authorized", "block", n, "reason", err)
			}
			return cb.Status_FORBIDDEN, nil
		}
		if err := srv.SendMsg(&encodedResponse{raw: raw}); err != nil {
			return 0, err
		}
		if h.Metrics != nil {
			h.Metrics.BlockSent(req.channel)
		}
	}
	return cb.Status_SUCCESS, nil
}

// parse checks a request in Fabric's order: form, timestamp and TLS binding (BAD_REQUEST),
// channel (NOT_FOUND), SeekInfo (BAD_REQUEST), read access (FORBIDDEN), positions.
func (h *Handler) parse(ctx context.Context, env *cb.Envelope) (*request, cb.Status, string) {
	parsed, err := msgprocessor.Parse(env)
	if err != nil {
		return nil, statusOf(err), err.Error()
	}
	if err := h.checkHeader(ctx, parsed.ChannelHeader); err != nil {
		return nil, cb.Status_BAD_REQUEST, err.Error()
	}
	chain, err := h.Registrar.DeliverChannel(parsed.ChannelHeader.ChannelId)
	if err != nil {
		return nil, statusOf(err), err.Error()
	}
	// From here on the request names a channel (refusals included, for the metrics).
	req := &request{channel: parsed.ChannelHeader.ChannelId, chain: chain}
	payload := &cb.Payload{}
	_ = proto.Unmarshal(env.Payload, payload) // Parse already read it
	seek := &ab.SeekInfo{}
	if err := proto.Unmarshal(payload.Data, seek); err != nil {
		return req, cb.Status_BAD_REQUEST, fmt.Sprintf("payload data is not a SeekInfo: %v", err)
	}
	access, err := h.Registrar.Authorize(env, parsed)
	if err != nil {
		return req, statusOf(err), err.Error()
	}
	if err := access.Check(); err != nil {
		return req, cb.Status_FORBIDDEN, err.Error()
	}
	if seek.Start == nil || seek.Stop == nil {
		return req, cb.Status_BAD_REQUEST, "SeekInfo needs both a start and a stop position"
	}
	height := chain.Height()
	if height == 0 {
		return req, cb.Status_SERVICE_UNAVAILABLE, "channel has no blocks yet"
	}
	req.access, req.failIfNotReady = access, seek.Behavior == ab.SeekInfo_FAIL_IF_NOT_READY
	switch s := seek.Start.Type.(type) {
	case *ab.SeekPosition_Oldest:
		req.start = 0
	case *ab.SeekPosition_Newest:
		req.start = height - 1
	case *ab.SeekPosition_Specified:
		req.start = s.Specified.GetNumber()
		if req.start > height {
			return req, cb.Status_NOT_FOUND, fmt.Sprintf("start block %d is beyond the next block %d", req.start, height)
		}
	default:
		return req, cb.Status_BAD_REQUEST, "unknown start position"
	}
	switch s := seek.Stop.Type.(type) {
	case *ab.SeekPosition_Oldest:
		req.stop = req.start
	case *ab.SeekPosition_Newest:
		// Newest to newest means one block, even if another is written meanwhile.
		if _, ok := seek.Start.Type.(*ab.SeekPosition_Newest); ok {
			req.stop = req.start
		} else {
			req.stop = height - 1
		}
	case *ab.SeekPosition_Specified:
		req.stop = s.Specified.GetNumber()
		if req.stop < req.start {
			return req, cb.Status_BAD_REQUEST, fmt.Sprintf("stop block %d is before start block %d", req.stop, req.start)
		}
	default:
		return req, cb.Status_BAD_REQUEST, "unknown stop position"
	}
	return req, cb.Status_SUCCESS, ""
}

// checkHeader applies the time window and, with mutual TLS, the binding of the request to
// the client's TLS certificate (which stops a captured request from being replayed by another
// client).
func (h *Handler) checkHeader(ctx context.Context, chdr *cb.ChannelHeader) error {
	if h.TimeWindow > 0 {
		if chdr.Timestamp == nil {
			return errors.New("channel header has no timestamp")
		}
		t := time.Unix(chdr.Timestamp.Seconds, int64(chdr.Timestamp.Nanos))
		if d := time.Since(t); d > h.TimeWindow || d < -h.TimeWindow {
			return fmt.Errorf("request timestamp %s is more than %s away from the orderer's time %s (General.Authentication.TimeWindow)", t.UTC().Format(time.RFC3339), h.TimeWindow, time.Now().UTC().Format(time.RFC3339))
		}
	}
	if !h.MutualTLS {
		return nil
	}
	if len(chdr.TlsCertHash) == 0 {
		return errors.New("request does not carry its TLS certificate hash (required with mutual TLS)")
	}
	actual := ClientCertHash(ctx)
	if actual == nil {
		return errors.New("client did not present a TLS certificate")
	}
	if !bytes.Equal(actual, chdr.TlsCertHash) {
		return errors.New("request's TLS certificate hash does not match the client's TLS certificate")
	}
	return nil
}

// ClientCertHash is the SHA-256 of the TLS certificate of the client of a gRPC call (ctx),
// or nil: what a request bound to that certificate carries as its TlsCertHash.
func ClientCertHash(ctx context.Context) []byte {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil
	}
	h := sha256.Sum256(ti.State.PeerCertificates[0].Raw)
	return h[:]
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func statusOf(err error) cb.Status {
	switch {
	case errors.Is(err, msgprocessor.ErrChannelNotFound):
		return cb.Status_NOT_FOUND
	case errors.Is(err, msgprocessor.ErrPermissionDenied):
		return cb.Status_FORBIDDEN
	case errors.Is(err, msgprocessor.ErrUnavailable):
		return cb.Status_SERVICE_UNAVAILABLE
	default:
		return cb.Status_BAD_REQUEST
	}
}
