// Package broadcast owns the Broadcast side of Fabric's AtomicBroadcast service: one stream,
// many envelopes, one response per envelope in request order. It pipelines: each envelope is
// validated and produced as soon as it arrives, while responses wait for their turn, so a
// single stream keeps many envelopes in flight to Kafka. A response is SUCCESS only once Kafka
// acknowledged the envelope.
//
// Like Fabric, the stream ends after the first response that is not SUCCESS; envelopes
// received after that one are not ordered and get no response.
package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msgprocessor"
)

// DefaultWindow is how many envelopes one stream may have in flight.
const DefaultWindow = 256

// Channel is the ingress of one channel.
type Channel interface {
	// Validate checks env under the channel's current config and returns that config's
	// sequence.
	Validate(env *cb.Envelope, p *msgprocessor.Parsed) (configSeq uint64, err error)
	// Order produces env to the channel's topic and returns once Kafka acknowledged it.
	Order(ctx context.Context, env *cb.Envelope, configSeq uint64) error
}

// Registrar finds the channel that orders a message.
type Registrar interface {
	BroadcastChannel(p *msgprocessor.Parsed) (Channel, error)
}

// Observer is told the outcome of every envelope (for metrics); it may be nil.
type Observer interface {
	Processed(channel string, headerType cb.HeaderType, status cb.Status)
}

// Handler serves Broadcast streams.
type Handler struct {
	Registrar Registrar
	Window    int
	Log       *slog.Logger
	Observer  Observer
}

type pending struct {
	done chan *ab.BroadcastResponse
}

// Handle serves one stream until the client closes it, ctx ends, or a refusal is sent.
func (h *Handler) Handle(srv ab.AtomicBroadcast_BroadcastServer) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	window := h.Window
	if window <= 0 {
		window = DefaultWindow
	}
	queue := make(chan pending, window)
	recvErr := make(chan error, 1)

	go func() {
		defer close(queue)
		for {
			env, err := srv.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			p := pending{done: make(chan *ab.BroadcastResponse, 1)}
			select {
			case queue <- p:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
			go func() { p.done <- h.process(ctx, env) }()
		}
	}()

	for p := range queue {
		var resp *ab.BroadcastResponse
		select {
		case resp = <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := srv.Send(resp); err != nil {
			return fmt.Errorf("broadcast: sending response: %w", err)
		}
		if resp.Status != cb.Status_SUCCESS {
			return nil
		}
	}
	if err := <-recvErr; err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		return err
	}
	return nil
}

func (h *Handler) process(ctx context.Context, env *cb.Envelope) *ab.BroadcastResponse {
	parsed, err := msgprocessor.Parse(env)
	channel, ht := "", cb.HeaderType(-1)
	if parsed != nil {
		channel, ht = parsed.ChannelHeader.ChannelId, cb.HeaderType(parsed.ChannelHeader.Type)
	}
	resp := h.order(ctx, env, parsed, err)
	if resp.Status != cb.Status_SUCCESS && h.Log != nil {
		h.Log.Warn("broadcast refused", "channel", channel, "type", ht.String(), "status", resp.Status.String(), "reason", resp.Info)
	}
	if h.Observer != nil {
		h.Observer.Processed(channel, ht, resp.Status)
	}
	return resp
}

func (h *Handler) order(ctx context.Context, env *cb.Envelope, parsed *msgprocessor.Parsed, err error) *ab.BroadcastResponse {
	if err != nil {
		return refusal(err)
	}
	ch, err := h.Registrar.BroadcastChannel(parsed)
	if err != nil {
		return refusal(err)
	}
	seq, err := ch.Validate(env, parsed)
	if err != nil {
		return refusal(err)
	}
	if err := ch.Order(ctx, env, seq); err != nil {
		return refusal(err)
	}
	return &ab.BroadcastResponse{Status: cb.Status_SUCCESS}
}

// Status maps a refusal to Fabric's Broadcast status.
func Status(err error) cb.Status {
	switch {
	case errors.Is(err, msgprocessor.ErrChannelNotFound):
		return cb.Status_NOT_FOUND
	case errors.Is(err, msgprocessor.ErrPermissionDenied):
		return cb.Status_FORBIDDEN
	case errors.Is(err, msgprocessor.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return cb.Status_SERVICE_UNAVAILABLE
	default:
		return cb.Status_BAD_REQUEST
	}
}

func refusal(err error) *ab.BroadcastResponse {
	return &ab.BroadcastResponse{Status: Status(err), Info: err.Error()}
}
