package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
	"google.golang.org/grpc"

	"github.com/kordhq/kord/orderer/client"
)

// streamResult is what one Broadcast stream achieved.
type streamResult struct {
	orderer string
	sent    int      // envelopes handed to the stream
	acked   []string // tx IDs answered SUCCESS, in order
	status  cb.Status
	info    string // set with status when the orderer refused an envelope
	err     error  // transport error (stream broken)
}

func (r streamResult) String() string {
	return fmt.Sprintf("%s: sent %d, acked %d, refusal %v %q, err %v", r.orderer, r.sent, len(r.acked), r.status, r.info, r.err)
}

// broadcastStream sends n endorser transactions built by data on one Broadcast stream and
// reads the responses, which come in request order. It stops at the first refusal (the
// orderer ends the stream after it) or transport error. onAck, if set, is called after each
// SUCCESS.
func broadcastStream(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channelID string, n int, data func(i int) []byte, onAck func()) streamResult {
	return broadcastPaced(ctx, conn, s, channelID, n, data, onAck, 0)
}

// broadcastPaced is broadcastStream with a pause of pace between two sends.
func broadcastPaced(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channelID string, n int, data func(i int) []byte, onAck func(), pace time.Duration) streamResult {
	var r streamResult
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ab.NewAtomicBroadcastClient(conn).Broadcast(ctx)
	if err != nil {
		r.err = err
		return r
	}
	sent := make(chan string, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(sent)
		for i := range n {
			if pace > 0 && i > 0 {
				time.Sleep(pace)
			}
			env, err := client.Envelope(s, cb.HeaderType_ENDORSER_TRANSACTION, channelID, data(i))
			if err != nil {
				return
			}
			id, err := client.TxID(env)
			if err != nil {
				return
			}
			sent <- id // before Send: the receiver pairs responses with IDs in this order
			if err := stream.Send(env); err != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	for id := range sent {
		r.sent++
		resp, err := stream.Recv()
		if err != nil {
			r.err = err
			break
		}
		if resp.Status != cb.Status_SUCCESS {
			r.status, r.info = resp.Status, resp.Info
			break
		}
		r.acked = append(r.acked, id)
		if onAck != nil {
			onAck()
		}
	}
	cancel() // unblocks a sender stuck in flow control
	for range sent {
		r.sent++
	}
	wg.Wait()
	return r
}

// payloads returns a generator of random transaction data: 200 B to 4 KiB, and every
// bigEvery-th one (if bigEvery > 0) 70 KiB, above PreferredMaxBytes.
func payloads(seed uint64, bigEvery int) func(i int) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	src := rand.NewChaCha8(key)
	rng := rand.New(src)
	return func(i int) []byte {
		size := 200 + rng.IntN(4*1024-200+1)
		if bigEvery > 0 && i%bigEvery == bigEvery-1 {
			size = 70 * 1024
		}
		b := make([]byte, size)
		_, _ = src.Read(b)
		return b
	}
}

// loadSpec describes a burst of Broadcast load on some orderers.
type loadSpec struct {
	channel   string // default appChannel
	targets   []*orderer
	streams   int // per orderer
	perStream int
	bigEvery  int
	seed      uint64
	pace      time.Duration // pause between two sends of a stream
	// onAck, if set, is called after each SUCCESS with the orderer that gave it.
	onAck func(o *orderer)
}

// runLoad runs every stream of spec concurrently, each on its own connection, and returns
// their results once all ended.
func runLoad(ctx context.Context, t *testing.T, s client.Signer, spec loadSpec) []streamResult {
	t.Helper()
	var (
		mu  sync.Mutex
		out []streamResult
		wg  sync.WaitGroup
	)
	channel := spec.channel
	if channel == "" {
		channel = appChannel
	}
	for oi, o := range spec.targets {
		conn := o.dial()
		defer conn.Close()
		for si := range spec.streams {
			gen := payloads(spec.seed*1000+uint64(oi*100+si), spec.bigEvery)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var onAck func()
				if spec.onAck != nil {
					onAck = func() { spec.onAck(o) }
				}
				r := broadcastPaced(ctx, conn, s, channel, spec.perStream, gen, onAck, spec.pace)
				r.orderer = o.name
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

// ackedSet collects the acknowledged tx IDs of results; it fails on a tx acknowledged twice.
func ackedSet(t *testing.T, into map[string]string, results []streamResult) {
	t.Helper()
	for _, r := range results {
		for _, id := range r.acked {
			if prev, dup := into[id]; dup {
				t.Fatalf("tx %s acknowledged twice (by %s and %s)", id, prev, r.orderer)
			}
			into[id] = r.orderer
		}
	}
}

// requireAllAcked fails unless every stream sent and got SUCCESS for all its envelopes.
func requireAllAcked(t *testing.T, results []streamResult, perStream int) {
	t.Helper()
	for _, r := range results {
		if r.err != nil || r.status != 0 || len(r.acked) != perStream {
			t.Errorf("broadcast stream did not succeed fully: %v", r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// deliverRange sends one seek request and returns the final status and the blocks received.
func deliverRange(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channelID string, start, stop *ab.SeekPosition, behavior ab.SeekInfo_SeekBehavior) (cb.Status, []*cb.Block, error) {
	req, err := client.SeekEnvelope(s, channelID, start, stop, behavior)
	if err != nil {
		return 0, nil, err
	}
	return deliverRaw(ctx, conn, req)
}

// deliverRaw sends req as is.
func deliverRaw(ctx context.Context, conn *grpc.ClientConn, req *cb.Envelope) (cb.Status, []*cb.Block, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var blks []*cb.Block
	st, err := client.Deliver(ctx, conn, req, func(b *cb.Block) error {
		blks = append(blks, b)
		return nil
	})
	return st, blks, err
}

// height is the number of blocks of channelID the orderer has written.
func height(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channelID string) (uint64, error) {
	st, blks, err := deliverRange(ctx, conn, s, channelID, client.Newest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY)
	if err != nil {
		return 0, err
	}
	if st != cb.Status_SUCCESS || len(blks) != 1 {
		return 0, fmt.Errorf("newest block of %s: status %v, %d blocks", channelID, st, len(blks))
	}
	return blks[0].Header.Number + 1, nil
}

var errAllSeen = errors.New("every wanted transaction was delivered")

// deliverUntil reads channelID from block 0 until every tx ID of want was delivered, and
// returns the blocks up to and including the one that held the last of them (or, with want
// empty, block 0 only). Since every orderer cuts the same blocks, the chains returned by
// different orderers for the same want have the same length.
func deliverUntil(ctx context.Context, conn *grpc.ClientConn, s client.Signer, channelID string, want map[string]string) ([]*cb.Block, error) {
	req, err := client.SeekEnvelope(s, channelID, client.Specified(0), client.Specified(client.MaxBlock), ab.SeekInfo_BLOCK_UNTIL_READY)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var blks []*cb.Block
	seen := 0
	_, err = client.Deliver(ctx, conn, req, func(b *cb.Block) error {
		blks = append(blks, b)
		for _, tx := range blockTxs(b) {
			if _, ok := want[tx.id]; ok {
				seen++
			}
		}
		if seen >= len(want) {
			return errAllSeen
		}
		return nil
	})
	if errors.Is(err, errAllSeen) {
		return blks, nil
	}
	if err == nil {
		err = errors.New("deliver stream ended")
	}
	return blks, fmt.Errorf("%d of %d transactions delivered in %d blocks: %w", seen, len(want), len(blks), err)
}

// tx is one envelope of a block, as the tests look at it.
type tx struct {
	id         string
	headerType cb.HeaderType
	size       int // len(Payload) + len(Signature), as the block cutter counts it
}

// blockTxs parses the envelopes of b; unparsable entries come back with an empty ID and
// header type -1.
func blockTxs(b *cb.Block) []tx {
	out := make([]tx, 0, len(b.GetData().GetData()))
	for _, d := range b.GetData().GetData() {
		t := tx{headerType: -1}
		env := &cb.Envelope{}
		if err := proto.Unmarshal(d, env); err == nil {
			t.size = len(env.Payload) + len(env.Signature)
			p := &cb.Payload{}
			if err := proto.Unmarshal(env.Payload, p); err == nil && p.Header != nil {
				ch := &cb.ChannelHeader{}
				if err := proto.Unmarshal(p.Header.ChannelHeader, ch); err == nil {
					t.id, t.headerType = ch.TxId, cb.HeaderType(ch.Type)
				}
			}
		}
		out = append(out, t)
	}
	return out
}
