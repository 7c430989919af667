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
	"runtime"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msgprocessor"
	"github.com/kordhq/kord/orderer/wire"
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
	// in that order. raw, when not nil, is env's canonical encoding (what proto.Marshal(env)
	// gives), as the client sent it: the channel may order it as it is.
	Enqueue(ctx context.Context, env *cb.Envelope, raw []byte, configSeq uint64) (Ack, error)
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
	// ReceiveRaw makes the handler receive envelopes as Received (srv.RecvMsg), which only
	// a server codec that calls UnmarshalReceived supports (wire.ServerCodec does).
	ReceiveRaw bool
}

// Received is an envelope together with the bytes it arrived as.
type Received struct {
	Env *cb.Envelope
	// Raw is the envelope's encoding as received when that is its canonical encoding (what
	// proto.Marshal(Env) gives); nil otherwise.
	Raw []byte
}

// Received must stay a wire.Received: otherwise gRPC would hand it to protobuf, which
// cannot decode it.
var _ wire.Received = (*Received)(nil)

// UnmarshalReceived decodes b, which it keeps. A canonical envelope (the encoding every
// Fabric SDK produces) is split without a copy, and goes to Kafka as it came: re-encoding
// it, as Fabric does, would give the same bytes.
func (r *Received) UnmarshalReceived(b []byte) error {
	if payload, sig, ok := msgprocessor.CanonicalEnvelope(b); ok {
		r.Env, r.Raw = &cb.Envelope{Payload: payload, Signature: sig}, b
		return nil
	}
	r.Env, r.Raw = new(cb.Envelope), nil
	return proto.Unmarshal(b, r.Env)
}

// item is one envelope on its way through the stream's three stages: validation (in
// parallel, on any core), enqueueing to Kafka (in stream order), and the response (in
// stream order, once Kafka acknowledged).
type item struct {
	env       *cb.Envelope
	raw       []byte // env's canonical encoding as received, or nil
	toOrder   *cb.Envelope
	parsed    *msgprocessor.Parsed
	ch        Channel
	seq       uint64
	validated chan error
	// Set by the enqueue stage: the pending acknowledgement, or why the envelope was refused.
	ack    Ack
	refuse error
	t      timings
}

// Handle serves one stream until the client closes it, ctx ends, or a refusal is sent.
//
// Four kinds of goroutines serve a stream: the receiver (srv.Recv, in order), a few
// validators (one per core: signature checks dominate the cost of an envelope, and long-lived
// workers keep the stacks that ECDSA grows instead of growing a new one per envelope), the
// enqueuer (hands validated envelopes to Kafka in stream order), and Handle itself, which
// waits for each acknowledgement in order and answers. The validators end when the receiver
// does; the others end with the stream.
func (h *Handler) Handle(srv ab.AtomicBroadcast_BroadcastServer) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	window := h.Window
	if window <= 0 {
		window = DefaultWindow
	}
	toValidate := make(chan *item, window)
	toEnqueue := make(chan *item, window)
	toAnswer := make(chan *item, window)
	recvErr := make(chan error, 1)

	for range max(1, min(runtime.GOMAXPROCS(0), window)) {
		go func() {
			for it := range toValidate {
				it.validated <- h.validate(it)
			}
		}()
	}

	go func() {
		defer close(toEnqueue)
		defer close(toValidate)
		for {
			var rcv Received
			var err error
			if h.ReceiveRaw {
				err = srv.RecvMsg(&rcv)
			} else {
				rcv.Env, err = srv.Recv()
			}
			if err != nil {
				recvErr <- err
				return
			}
			it := &item{env: rcv.Env, raw: rcv.Raw, validated: make(chan error, 1)}
			select {
			case toValidate <- it:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
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
		for it := range toEnqueue {
			var err error
			select {
			case err = <-it.validated:
			case <-ctx.Done():
				return
			}
			if err == nil {
				it.t.enqueueStart = time.Now()
				var raw []byte
				if it.toOrder == it.env {
					raw = it.raw // a normal message goes as it came; a config update was rewritten
				}
				it.ack, err = it.ch.Enqueue(ctx, it.toOrder, raw, it.seq)
			}
			it.refuse = err
			select {
			case toAnswer <- it:
			case <-ctx.Done():
				return
			}
			if err != nil {
				// The stream ends at the first refusal; what follows is not ordered.
				return
			}
		}
	}()

	for it := range toAnswer {
		err := it.refuse
		if err == nil {
			err = it.ack.Wait(ctx)
			if ctx.Err() != nil {
				return nil
			}
		}
		resp := h.finish(it, err)
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
