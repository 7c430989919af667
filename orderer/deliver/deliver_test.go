package deliver

import (
	"context"
	"errors"
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
	"github.com/kordhq/kord/orderer/wire"
)

// memChain is an in-memory chain whose Block waits like the ledger's iterator.
type memChain struct {
	mu     sync.Mutex
	blocks []*cb.Block
	grown  chan struct{}
}

func newMemChain(n int) *memChain {
	c := &memChain{grown: make(chan struct{})}
	for i := 0; i < n; i++ {
		c.add()
	}
	return c
}

func (c *memChain) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks = append(c.blocks, &cb.Block{Header: &cb.BlockHeader{Number: uint64(len(c.blocks))}})
	close(c.grown)
	c.grown = make(chan struct{})
}

func (c *memChain) Height() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(len(c.blocks))
}

func (c *memChain) WaitRawBlock(ctx context.Context, n uint64) ([]byte, error) {
	for {
		c.mu.Lock()
		if n < uint64(len(c.blocks)) {
			b := c.blocks[n]
			c.mu.Unlock()
			return proto.Marshal(b)
		}
		g := c.grown
		c.mu.Unlock()
		select {
		case <-g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

type registrar struct{ chain *memChain }

func (r registrar) DeliverChannel(id string) (Chain, error) {
	if id != "ch" {
		return nil, msgprocessor.ErrChannelNotFound
	}
	return r.chain, nil
}

func (r registrar) Authorize(*cb.Envelope, *msgprocessor.Parsed) (Access, error) {
	return allow{}, nil
}

type allow struct{}

func (allow) Check() error { return nil }

type server struct{ h *Handler }

func (s server) Broadcast(ab.AtomicBroadcast_BroadcastServer) error { return nil }
func (s server) Deliver(srv ab.AtomicBroadcast_DeliverServer) error { return s.h.Handle(srv) }

func start(t testing.TB, h *Handler) ab.AtomicBroadcastClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(wire.ServerCodec()))
	ab.RegisterAtomicBroadcastServer(gs, server{h})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ab.NewAtomicBroadcastClient(conn)
}

func seek(channel string, data []byte) *cb.Envelope {
	chdr, _ := proto.Marshal(&cb.ChannelHeader{Type: int32(cb.HeaderType_DELIVER_SEEK_INFO), ChannelId: channel})
	shdr, _ := proto.Marshal(&cb.SignatureHeader{Creator: []byte("me")})
	p, _ := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: chdr, SignatureHeader: shdr}, Data: data})
	return &cb.Envelope{Payload: p, Signature: []byte("s")}
}

func seekInfo(start, stop *ab.SeekPosition, b ab.SeekInfo_SeekBehavior) []byte {
	d, _ := proto.Marshal(&ab.SeekInfo{Start: start, Stop: stop, Behavior: b})
	return d
}

func oldest() *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Oldest{Oldest: &ab.SeekOldest{}}}
}
func newest() *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Newest{Newest: &ab.SeekNewest{}}}
}
func at(n uint64) *ab.SeekPosition {
	return &ab.SeekPosition{Type: &ab.SeekPosition_Specified{Specified: &ab.SeekSpecified{Number: n}}}
}

// run sends one request and returns the block numbers received and the final status.
func run(t *testing.T, c ab.AtomicBroadcastClient, env *cb.Envelope) ([]uint64, cb.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(env); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		switch r := resp.Type.(type) {
		case *ab.DeliverResponse_Block:
			got = append(got, r.Block.Header.Number)
		case *ab.DeliverResponse_Status:
			return got, r.Status
		}
	}
}

func TestSeekSemantics(t *testing.T) {
	c := start(t, &Handler{Registrar: registrar{newMemChain(5)}})
	fail, block := ab.SeekInfo_FAIL_IF_NOT_READY, ab.SeekInfo_BLOCK_UNTIL_READY
	cases := []struct {
		name   string
		env    *cb.Envelope
		blocks int
		first  uint64
		status cb.Status
	}{
		{"oldest to newest", seek("ch", seekInfo(oldest(), newest(), block)), 5, 0, cb.Status_SUCCESS},
		{"newest to newest", seek("ch", seekInfo(newest(), newest(), block)), 1, 4, cb.Status_SUCCESS},
		{"specified range", seek("ch", seekInfo(at(1), at(3), block)), 3, 1, cb.Status_SUCCESS},
		{"oldest stop means one block", seek("ch", seekInfo(at(2), oldest(), block)), 1, 2, cb.Status_SUCCESS},
		{"next block, fail if not ready", seek("ch", seekInfo(at(5), at(5), fail)), 0, 0, cb.Status_NOT_FOUND},
		{"range running past the tip, fail if not ready", seek("ch", seekInfo(at(3), at(9), fail)), 2, 3, cb.Status_NOT_FOUND},
		{"start beyond the next block", seek("ch", seekInfo(at(9), at(9), block)), 0, 0, cb.Status_NOT_FOUND},
		{"stop before start", seek("ch", seekInfo(at(3), at(1), block)), 0, 0, cb.Status_BAD_REQUEST},
		{"no stop", seek("ch", seekInfo(oldest(), nil, block)), 0, 0, cb.Status_BAD_REQUEST},
		{"garbage seek info", seek("ch", []byte{0xff, 0xff}), 0, 0, cb.Status_BAD_REQUEST},
		{"unknown channel", seek("nope", seekInfo(oldest(), newest(), block)), 0, 0, cb.Status_NOT_FOUND},
		{"garbage envelope", &cb.Envelope{Payload: []byte{0xff}}, 0, 0, cb.Status_BAD_REQUEST},
		{"no signature header", &cb.Envelope{Payload: []byte{0x0a, 0x00}}, 0, 0, cb.Status_FORBIDDEN},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, status := run(t, c, tc.env)
			if status != tc.status || len(got) != tc.blocks || (len(got) > 0 && got[0] != tc.first) {
				t.Fatalf("got blocks %v status %s; want %d blocks from %d, %s", got, status, tc.blocks, tc.first, tc.status)
			}
		})
	}
}

func TestBlockUntilReadyWakesUp(t *testing.T) {
	chain := newMemChain(2)
	c := start(t, &Handler{Registrar: registrar{chain}})
	done := make(chan []uint64)
	go func() {
		got, _ := run(t, c, seek("ch", seekInfo(at(1), at(3), ab.SeekInfo_BLOCK_UNTIL_READY)))
		done <- got
	}()
	time.Sleep(50 * time.Millisecond)
	chain.add()
	chain.add()
	select {
	case got := <-done:
		if len(got) != 3 || got[2] != 3 {
			t.Fatalf("got %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deliver did not wake up")
	}
}

func TestStoppingEndsWaitingStreams(t *testing.T) {
	stopping := make(chan struct{})
	c := start(t, &Handler{Registrar: registrar{newMemChain(1)}, Stopping: stopping})
	done := make(chan cb.Status)
	go func() {
		_, st := run(t, c, seek("ch", seekInfo(at(1), at(1), ab.SeekInfo_BLOCK_UNTIL_READY)))
		done <- st
	}()
	time.Sleep(50 * time.Millisecond)
	close(stopping)
	select {
	case st := <-done:
		if st != cb.Status_SERVICE_UNAVAILABLE {
			t.Fatalf("status %s", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by Stopping")
	}
}

// revocable is an Access whose permission a test takes away.
type revocable struct {
	mu      sync.Mutex
	revoked bool
}

func (a *revocable) revoke() {
	a.mu.Lock()
	a.revoked = true
	a.mu.Unlock()
}

func (a *revocable) Check() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked {
		return errors.New("revoked")
	}
	return nil
}

type revocableRegistrar struct {
	chain  *memChain
	access *revocable
}

func (r revocableRegistrar) DeliverChannel(id string) (Chain, error) {
	return registrar{r.chain}.DeliverChannel(id)
}

func (r revocableRegistrar) Authorize(*cb.Envelope, *msgprocessor.Parsed) (Access, error) {
	return r.access, nil
}

// TestAccessCheckedBeforeSending: a stream waiting for the next block when its permission is
// taken away (certificate expired, config changed) is refused that block, as in Fabric, which
// evaluates access once the block is read: the block written after the change is not sent.
func TestAccessCheckedBeforeSending(t *testing.T) {
	chain := newMemChain(2)
	access := &revocable{}
	c := start(t, &Handler{Registrar: revocableRegistrar{chain, access}})
	type result struct {
		blocks []uint64
		status cb.Status
	}
	done := make(chan result, 1)
	go func() {
		got, st := run(t, c, seek("ch", seekInfo(oldest(), at(5), ab.SeekInfo_BLOCK_UNTIL_READY)))
		done <- result{got, st}
	}()
	time.Sleep(100 * time.Millisecond) // blocks 0 and 1 sent, the stream waits for block 2
	access.revoke()
	chain.add()
	select {
	case r := <-done:
		if r.status != cb.Status_FORBIDDEN || len(r.blocks) != 2 {
			t.Fatalf("got blocks %v and %s; want blocks 0 and 1, then FORBIDDEN without block 2", r.blocks, r.status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended")
	}
}

// FuzzDeliverRequest feeds arbitrary bytes as a Deliver request: the envelope, payload,
// headers and SeekInfo parsers must answer with a status, never panic, and a request they
// accept must be a well-formed range.
func FuzzDeliverRequest(f *testing.F) {
	for _, env := range []*cb.Envelope{
		seek("ch", seekInfo(oldest(), newest(), ab.SeekInfo_BLOCK_UNTIL_READY)),
		seek("ch", seekInfo(at(1), at(3), ab.SeekInfo_FAIL_IF_NOT_READY)),
		seek("ch", seekInfo(newest(), newest(), ab.SeekInfo_BLOCK_UNTIL_READY)),
		seek("ch", seekInfo(at(2), oldest(), ab.SeekInfo_BLOCK_UNTIL_READY)),
		seek("ch", []byte{0xff}),
		seek("other", nil),
	} {
		raw, err := proto.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	chain := newMemChain(3)
	handlers := []*Handler{
		{Registrar: registrar{chain}},
		{Registrar: registrar{chain}, TimeWindow: 15 * time.Minute, MutualTLS: true},
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		env := &cb.Envelope{}
		if err := proto.Unmarshal(raw, env); err != nil {
			return
		}
		for _, h := range handlers {
			req, status, reason := h.parse(context.Background(), env)
			if status != cb.Status_SUCCESS {
				if reason == "" {
					t.Fatalf("refusal %s without a reason", status)
				}
				continue
			}
			if req == nil || req.stop < req.start || req.access == nil || req.chain == nil {
				t.Fatalf("accepted a malformed request: %+v", req)
			}
		}
	})
}
