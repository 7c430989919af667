// Package deliver owns the Deliver side of Fabric's AtomicBroadcast service: a client sends a
// signed SeekInfo, the orderer streams the blocks it asks for and ends with a status. Blocks
// already in the ledger are served whatever the state of Kafka; only blocks not yet written
// wait (BLOCK_UNTIL_READY) or are refused (FAIL_IF_NOT_READY).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msgprocessor"
)

// Chain is the read side of one channel's ledger.
type Chain interface {
	Height() uint64
	// Block returns block n, waiting until it is written or ctx ends.
	Block(ctx context.Context, n uint64) (*cb.Block, error)
}

// Registrar finds channels and checks read access.
type Registrar interface {
	// DeliverChannel returns the chain of a channel (ErrChannelNotFound if there is none).
	DeliverChannel(channelID string) (Chain, error)
	// Authorize checks that the signed request may read the channel.
	Authorize(env *cb.Envelope, p *msgprocessor.Parsed) error
}

// Handler serves Deliver streams.
type Handler struct {
	Registrar Registrar
	Log       *slog.Logger
	// Stopping, when closed, ends every stream: a request waiting for a block that is not
	// written yet gets SERVICE_UNAVAILABLE, so the server can shut down without waiting for
	// clients to leave.
	Stopping <-chan struct{}
	Metrics  Metrics // may be nil
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
	start, stop    uint64
	failIfNotReady bool
}

func (h *Handler) serve(ctx context.Context, srv ab.AtomicBroadcast_DeliverServer, env *cb.Envelope) (status cb.Status, err error) {
	req, status, reason := h.parse(env)
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
		b, err := req.chain.Block(ctx, n)
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
		if err := srv.Send(&ab.DeliverResponse{Type: &ab.DeliverResponse_Block{Block: b}}); err != nil {
			return 0, err
		}
		if h.Metrics != nil {
			h.Metrics.BlockSent(req.channel)
		}
	}
	return cb.Status_SUCCESS, nil
}

func (h *Handler) parse(env *cb.Envelope) (*request, cb.Status, string) {
	parsed, err := msgprocessor.Parse(env)
	if err != nil {
		return nil, statusOf(err), err.Error()
	}
	chain, err := h.Registrar.DeliverChannel(parsed.ChannelHeader.ChannelId)
	if err != nil {
		return nil, statusOf(err), err.Error()
	}
	// From here on the request names a channel (refusals included, for the metrics).
	req := &request{channel: parsed.ChannelHeader.ChannelId, chain: chain}
	if err := h.Registrar.Authorize(env, parsed); err != nil {
		return req, statusOf(err), err.Error()
	}
	payload := &cb.Payload{}
	_ = proto.Unmarshal(env.Payload, payload) // Parse already read it
	seek := &ab.SeekInfo{}
	if err := proto.Unmarshal(payload.Data, seek); err != nil {
		return req, cb.Status_BAD_REQUEST, fmt.Sprintf("payload data is not a SeekInfo: %v", err)
	}
	if seek.Start == nil || seek.Stop == nil {
		return req, cb.Status_BAD_REQUEST, "SeekInfo needs both a start and a stop position"
	}
	height := chain.Height()
	if height == 0 {
		return req, cb.Status_SERVICE_UNAVAILABLE, "channel has no blocks yet"
	}
	req.failIfNotReady = seek.Behavior == ab.SeekInfo_FAIL_IF_NOT_READY
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
