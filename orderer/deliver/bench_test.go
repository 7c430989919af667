package deliver

import (
	"context"
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/ledger"
	"github.com/kordhq/kord/orderer/msgprocessor"
)

// Deliver benchmarks serve a chain from a real LevelDB ledger over gRPC on loopback to
// clients in the same process, so the figures include the client's decoding.

type storeRegistrar struct{ s *ledger.Store }

func (r storeRegistrar) DeliverChannel(string) (Chain, error) { return r.s, nil }
func (r storeRegistrar) Authorize(*cb.Envelope, *msgprocessor.Parsed) (Access, error) {
	return allow{}, nil
}

// benchLedger writes a chain of blocks of envs envelopes of 1 KiB, reopening the store so
// reads come from table files as for a long-lived chain.
func benchLedger(b *testing.B, height, envs int) *ledger.Store {
	b.Helper()
	root := b.TempDir()
	p, err := ledger.NewProvider(root)
	if err != nil {
		b.Fatal(err)
	}
	s, err := p.Open("ch")
	if err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, envs)
	for i := range data {
		data[i] = make([]byte, 1024)
		_, _ = rand.Read(data[i])
	}
	for n := 0; n < height; n += 100 {
		batch := make([]*cb.Block, 0, 100)
		for i := n; i < n+100 && i < height; i++ {
			batch = append(batch, &cb.Block{
				Header:   &cb.BlockHeader{Number: uint64(i), PreviousHash: make([]byte, 32), DataHash: make([]byte, 32)},
				Data:     &cb.BlockData{Data: data},
				Metadata: &cb.BlockMetadata{Metadata: [][]byte{{1}, {}, {2}, {}}},
			})
		}
		if err := s.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	if p, err = ledger.NewProvider(root); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	if s, err = p.Open("ch"); err != nil {
		b.Fatal(err)
	}
	return s
}

// follow delivers blocks 0..last and returns the bytes received.
func follow(b *testing.B, c ab.AtomicBroadcastClient, last uint64) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := c.Deliver(ctx)
	if err != nil {
		b.Error(err)
		return 0
	}
	if err := st.Send(seek("ch", seekInfo(oldest(), at(last), ab.SeekInfo_BLOCK_UNTIL_READY))); err != nil {
		b.Error(err)
		return 0
	}
	var bytes int64
	want := uint64(0)
	for {
		resp, err := st.Recv()
		if err != nil {
			b.Error(err)
			return bytes
		}
		switch r := resp.Type.(type) {
		case *ab.DeliverResponse_Block:
			if r.Block.Header.Number != want {
				b.Errorf("block %d, want %d", r.Block.Header.Number, want)
				return bytes
			}
			want++
			for _, d := range r.Block.Data.Data {
				bytes += int64(len(d))
			}
		case *ab.DeliverResponse_Status:
			if r.Status != cb.Status_SUCCESS || want != last+1 {
				b.Errorf("status %s after %d blocks", r.Status, want)
			}
			return bytes
		}
	}
}

// peakHeap samples the live heap while fn runs and returns the highest value above the heap
// measured (after a GC) before it started.
func peakHeap(fn func()) (peak uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var hi atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > base && m.HeapAlloc-base > hi.Load() {
					hi.Store(m.HeapAlloc - base)
				}
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return hi.Load()
}

// BenchmarkDeliverChain delivers a 2,000-block chain (10 envelopes of 1 KiB per block) from
// block 0 to one follower per iteration.
func BenchmarkDeliverChain(b *testing.B) {
	const height = 2000
	s := benchLedger(b, height, 10)
	c := start(b, &Handler{Registrar: storeRegistrar{s}})
	b.SetBytes(height * 10 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		follow(b, c, height-1)
	}
	b.ReportMetric(float64(b.N)*height/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkDeliverFollowers delivers a 10,000-block chain to 10 followers at once (the
// issue's memory case) and reports the peak heap growth relative to one follower reading the
// same chain alone (heap-ratio; the target is at most 2).
func BenchmarkDeliverFollowers(b *testing.B) {
	const height, followers = 10000, 10
	s := benchLedger(b, height, 4)
	c := start(b, &Handler{Registrar: storeRegistrar{s}})
	one := peakHeap(func() { follow(b, c, height-1) })
	b.SetBytes(height * 4 * 1024 * followers)
	b.ReportAllocs()
	var many uint64
	for b.Loop() {
		many = max(many, peakHeap(func() {
			var wg sync.WaitGroup
			for range followers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					follow(b, c, height-1)
				}()
			}
			wg.Wait()
		}))
	}
	b.ReportMetric(float64(b.N)*height*followers/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(float64(one)/(1<<20), "MiB-heap-1")
	b.ReportMetric(float64(many)/(1<<20), "MiB-heap-10")
	b.ReportMetric(float64(many)/float64(max(one, 1)), "heap-ratio")
}
