package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kordhq/kord/orderer/msgprocessor"
)

// fakeChannel validates with random delays (so validations finish out of order) and records
// the order envelopes are enqueued in.
type fakeChannel struct {
	mu       sync.Mutex
	enqueued []string
	refuse   map[string]error
}

type ack struct{ delay time.Duration }

func (a ack) Wait(ctx context.Context) error {
	select {
	case <-time.After(a.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func txID(p *msgprocessor.Parsed) string { return p.ChannelHeader.TxId }

func (f *fakeChannel) Validate(env *cb.Envelope, p *msgprocessor.Parsed) (*cb.Envelope, uint64, error) {
	time.Sleep(time.Duration(rand.Intn(2000)) * time.Microsecond)
	return env, 1, f.refuse[txID(p)]
}

func (f *fakeChannel) Enqueue(_ context.Context, env *cb.Envelope, _ []byte, _ uint64) (Ack, error) {
	p, _ := msgprocessor.Parse(env)
	f.mu.Lock()
	f.enqueued = append(f.enqueued, txID(p))
	f.mu.Unlock()
	return ack{time.Duration(rand.Intn(2000)) * time.Microsecond}, nil
}

type reg struct{ ch *fakeChannel }

func (r reg) BroadcastChannel(p *msgprocessor.Parsed) (Channel, error) {
	if p.ChannelHeader.ChannelId != "ch" {
		return nil, fmt.Errorf("%w: no such channel", msgprocessor.ErrChannelNotFound)
	}
	return r.ch, nil
}

type srv struct{ h *Handler }

func (s srv) Broadcast(st ab.AtomicBroadcast_BroadcastServer) error { return s.h.Handle(st) }
func (s srv) Deliver(ab.AtomicBroadcast_DeliverServer) error        { return nil }

func dial(t *testing.T, h *Handler) ab.AtomicBroadcastClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ab.RegisterAtomicBroadcastServer(gs, srv{h})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ab.NewAtomicBroadcastClient(conn)
}

func env(channel, tx string) *cb.Envelope {
	chdr, _ := proto.Marshal(&cb.ChannelHeader{Type: int32(cb.HeaderType_ENDORSER_TRANSACTION), ChannelId: channel, TxId: tx})
	shdr, _ := proto.Marshal(&cb.SignatureHeader{Creator: []byte("me")})
	p, _ := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr, SignatureHeader: shdr}})
	return &cb.Envelope{Payload: p, Signature: []byte("s")}
}

func TestOrderIsKeptWhilePipelined(t *testing.T) {
	ch := &fakeChannel{}
	c := dial(t, &Handler{Registrar: reg{ch}, Window: 64})
	st, err := c.Broadcast(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	go func() {
		for i := 0; i < n; i++ {
			_ = st.Send(env("ch", fmt.Sprint(i)))
		}
		_ = st.CloseSend()
	}()
	for i := 0; i < n; i++ {
		r, err := st.Recv()
		if err != nil || r.Status != cb.Status_SUCCESS {
			t.Fatalf("response %d: %v %v", i, r, err)
		}
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream should end after CloseSend, got %v", err)
	}
	for i, id := range ch.enqueued {
		if id != fmt.Sprint(i) {
			t.Fatalf("envelope %s enqueued at position %d: Kafka order differs from stream order", id, i)
		}
	}
	if len(ch.enqueued) != n {
		t.Fatalf("%d enqueued", len(ch.enqueued))
	}
}

func TestStatusesAndStreamEndsAtFirstRefusal(t *testing.T) {
	cases := []struct {
		name string
		bad  *cb.Envelope
		want cb.Status
	}{
		{"malformed", &cb.Envelope{Payload: []byte{0xff}}, cb.Status_BAD_REQUEST},
		{"unknown channel", env("nope", "x"), cb.Status_NOT_FOUND},
		{"forbidden", env("ch", "forbidden"), cb.Status_FORBIDDEN},
		{"unavailable", env("ch", "unavailable"), cb.Status_SERVICE_UNAVAILABLE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := &fakeChannel{refuse: map[string]error{
				"forbidden":   fmt.Errorf("%w: bad signature", msgprocessor.ErrPermissionDenied),
				"unavailable": fmt.Errorf("%w: kafka down", msgprocessor.ErrUnavailable),
			}}
			c := dial(t, &Handler{Registrar: reg{ch}})
			st, err := c.Broadcast(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []*cb.Envelope{env("ch", "0"), tc.bad, env("ch", "2")} {
				if err := st.Send(e); err != nil {
					t.Fatal(err)
				}
			}
			r, err := st.Recv()
			if err != nil || r.Status != cb.Status_SUCCESS {
				t.Fatalf("first: %v %v", r, err)
			}
			r, err = st.Recv()
			if err != nil || r.Status != tc.want || r.Info == "" {
				t.Fatalf("second: %v %v, want %s with a reason", r, err, tc.want)
			}
			if _, err := st.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream should end after a refusal, got %v", err)
			}
			for _, id := range ch.enqueued {
				if id == "2" {
					t.Fatal("an envelope after the refusal was ordered")
				}
			}
		})
	}
}
