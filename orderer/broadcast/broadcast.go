// Package broadcast owns the Broadcast side of Fabric's AtomicBroadcast service: one stream,
// many envelopes, one response per envelope in request order. It pipelines: each envelope is
// validated and produced as soon as it arrives, while responses wait for their turn, so a
// single stream keeps many envelopes in flight to Kafka. A response is SUCCESS only once Kafka
// acknowledged the envelope.
//
// Like Fabric, the stream ends after the first response that is not SUCCESS. An envelope
// refused before it reaches Kafka (malformed, forbidden, unknown channel, Kafka unreachable)
// stops the stream there: nothing received after it is ordered. An envelope that Kafka itself
// fails after accepting it may have later envelopes of the stream already on their way; those
// can be ordered without a response, which a client sees as "not acknowledged" (never the
// reverse: nothing acknowledged is ever missing).
package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msgprocessor"
)

// DefaultWindow is how many envelopes one stream may have in flight.
const DefaultWindow = 256

// Channel is the ingress of one channel.
type Channel interface {
	// Validate checks env under the channel's current config and returns the envelope to
	// order (env itself for a normal message; the CONFIG or ORDERER_TRANSACTION envelope a
	// config update becomes) and the config sequence it was validated under.
	Validate(env *cb.Envelope, p *msgprocessor.Parsed) (toOrder *cb.Envelope, configSeq uint64, err error)
	// Enqueue hands an envelope returned by Validate to Kafka without waiting for the
	// acknowledgement; envelopes enqueued one after the other reach the channel's partition
	// in that order.
	Enqueue(ctx context.Context, env *cb.Envelope, configSeq uint64) (Ack, error)
}

// Ack is an enqueued envelope's pending acknowledgement.
type Ack interface {
	Wait(ctx context.Context) error
}

// Registrar finds the channel that orders a message.
type Registrar interface {
	BroadcastChannel(p *msgprocessor.Parsed) (Channel, error)
}

// Handler serves Broadcast streams.
type Handler struct {
	Registrar Registrar
	Window    int
	Log       *slog.Logger
	Metrics   Metrics // may be nil
}

// item is one envelope on its way through the stream's three stages: validation (in
// parallel, on any core), enqueueing to Kafka (in stream order), and the response (in
// stream order, once Kafka acknowledged).
type item struct {
	env       *cb.Envelope
	toOrder   *cb.Envelope
	parsed    *msgprocessor.Parsed
	ch        Channel
	seq       uint64
	validated chan error
	resp      chan *ab.BroadcastResponse
	t         timings
}

// Handle serves one stream until the client closes it, ctx ends, or a refusal is sent.
func (h *Handler) Handle(srv ab.AtomicBroadcast_BroadcastServer) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	window := h.Window
	if window <= 0 {
		window = DefaultWindow
	}
	toEnqueue := make(chan *item, window)
	toAnswer := make(chan *item, window)
	recvErr := make(chan error, 1)

	go func() {
		defer close(toEnqueue)
		for {
			env, err := srv.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			it := &item{env: env, validated: make(chan error, 1), resp: make(chan *ab.BroadcastResponse, 1)}
			go func() { it.validated <- h.validate(it) }()
			select {
			case toEnqueue <- it:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()

	go func() {
		defer close(toAnswer)
		refused := false
		for it := range toEnqueue {
			if refused {
				// The stream ends at the first refusal; what follows is not ordered.
				continue
			}
			var err error
			select {
			case err = <-it.validated:
			case <-ctx.Done():
				return
			}
			if err == nil {
				var ack Ack
				it.t.enqueueStart = time.Now()
				if ack, err = it.ch.Enqueue(ctx, it.toOrder, it.seq); err == nil {
					go func() { it.resp <- h.finish(it, ack.Wait(ctx)) }()
				}
			}
			if err != nil {
				refused = true
				it.resp <- h.finish(it, err)
			}
			select {
			case toAnswer <- it:
			case <-ctx.Done():
				return
			}
		}
	}()

	for it := range toAnswer {
		var resp *ab.BroadcastResponse
		select {
		case resp = <-it.resp:
		case <-ctx.Done():
			return nil
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

// validate parses the envelope, finds its channel and checks it.
func (h *Handler) validate(it *item) error {
	start := time.Now()
	defer func() { it.t.validate = time.Since(start) }()
	parsed, err := msgprocessor.Parse(it.env)
	if err != nil {
		return err
	}
	it.parsed = parsed
	if it.ch, err = h.Registrar.BroadcastChannel(parsed); err != nil {
		return err
	}
	it.toOrder, it.seq, err = it.ch.Validate(it.env, parsed)
	return err
}

// finish turns an envelope's outcome into its response, logging and counting it.
func (h *Handler) finish(it *item, err error) *ab.BroadcastResponse {
	resp := &ab.BroadcastResponse{Status: cb.Status_SUCCESS}
	if err != nil {
		resp = &ab.BroadcastResponse{Status: Status(err), Info: err.Error()}
	}
	channel, ht := "", cb.HeaderType(-1)
	if it.parsed != nil {
		channel, ht = it.parsed.ChannelHeader.ChannelId, cb.HeaderType(it.parsed.ChannelHeader.Type)
	}
	if err != nil && h.Log != nil {
		h.Log.Warn("broadcast refused", "channel", channel, "type", ht.String(), "status", resp.Status.String(), "reason", resp.Info)
	}
	h.record(it, resp.Status)
	return resp
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
