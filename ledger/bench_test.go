package ledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	"github.com/syndtr/goleveldb/leveldb"
)

// benchBlock is ~1 KiB: ten ~100-byte envelopes plus header and metadata.
func benchBlock(b *testing.B, n uint64) *cb.Block { return testBlock(b, n, 10, 100) }

func BenchmarkAppend(b *testing.B) {
	s := mustOpen(b, newTestProvider(b, b.TempDir()), "bench")
	blocks := make([]*cb.Block, b.N)
	for i := range blocks {
		blocks[i] = benchBlock(b, uint64(i))
	}
	b.SetBytes(int64(len(mustMarshal(b, blocks[0]))))
	b.ReportAllocs()
	b.ResetTimer()
	for _, blk := range blocks {
		if err := s.Append(blk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIterateRaw(b *testing.B) {
	const chain = 5000
	root := b.TempDir()
	p := newTestProvider(b, root)
	s := mustOpen(b, p, "bench")
	batch := make([]*cb.Block, 0, 500)
	for n := uint64(0); n < chain; n++ {
		batch = append(batch, benchBlock(b, n))
		if len(batch) == cap(batch) {
			if err := s.Append(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// Reopen so reads come from table files, as for a long-lived chain,
	// rather than from the memtable the appends filled.
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	s = mustOpen(b, newTestProvider(b, root), "bench")
	ctx := context.Background()
	raw, err := s.RawBlock(0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	it := s.Iterator(0)
	for i := 0; i < b.N; i++ {
		if uint64(i)%chain == 0 {
			it = s.Iterator(0)
		}
		if _, _, err := it.NextRaw(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendFullBlock appends blocks of 500 envelopes of 1 KiB (the settings),
// one synced LevelDB batch each, as a chain writes a cut block.
func BenchmarkAppendFullBlock(b *testing.B) {
	s := mustOpen(b, newTestProvider(b, b.TempDir()), "bench")
	proto := testBlock(b, 0, 500, 1024)
	b.SetBytes(int64(len(mustMarshal(b, proto))))
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		blk := testBlock(b, n, 0, 0)
		blk.Data = proto.Data
		if err := s.Append(blk); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkFollowers has 10 iterators read the same chain from block 0 at once, as 10 peers
// catching up do (100 blocks each per iteration); bytes/s is the total served.
func BenchmarkFollowers(b *testing.B) {
	const chain, followers = 2000, 10
	root := b.TempDir()
	p := newTestProvider(b, root)
	s := mustOpen(b, p, "bench")
	for n := uint64(0); n < chain; n += 100 {
		batch := make([]*cb.Block, 0, 100)
		for i := n; i < n+100; i++ {
			batch = append(batch, benchBlock(b, i))
		}
		if err := s.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	s = mustOpen(b, newTestProvider(b, root), "bench")
	raw, err := s.RawBlock(0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)) * 100 * followers)
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		errs := make(chan error, followers)
		for range followers {
			go func() {
				it := s.Iterator(0)
				defer it.Close()
				for range 100 {
					if _, _, err := it.NextRaw(ctx); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range followers {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkAppendLatency appends blocks of 100 and of 500 random 1 KiB envelopes (at 5,000
// envelopes/s, a block cut every 20 ms with MaxMessageCount 100, every 100 ms with 500) one at
// a time, as the chain does, and reports the tail of one Append's duration: a chain consumes
// nothing while it writes, so a slow write delays every envelope behind it. Run it long
// enough to cover several memtable flushes and compactions, e.g. -benchtime 1500x.
func BenchmarkAppendLatency(b *testing.B) {
	for _, envs := range []int{100, 500} {
		b.Run(fmt.Sprintf("envelopes=%d", envs), func(b *testing.B) { appendLatency(b, envs) })
	}
}

func appendLatency(b *testing.B, envs int) {
	s := mustOpen(b, newTestProvider(b, b.TempDir()), "bench")
	proto := testBlock(b, 0, envs, 1024)
	b.SetBytes(int64(len(mustMarshal(b, proto))))
	var took []time.Duration
	n := uint64(0)
	for b.Loop() {
		blk := testBlock(b, n, 0, 0)
		// The envelopes rotate and the first one changes, so that no two blocks are equal.
		blk.Data = &cb.BlockData{Data: make([][]byte, envs)}
		for i := range blk.Data.Data {
			blk.Data.Data[i] = proto.Data.Data[(i+int(n))%envs]
		}
		blk.Data.Data[0] = append([]byte(nil), blk.Data.Data[0]...)
		blk.Data.Data[0][0] = byte(n)
		began := time.Now()
		if err := s.Append(blk); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(began))
		n++
	}
	slices.Sort(took)
	at := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(at(1), "max-ms")
	// What the disk took per byte of blocks: the journal, the tables flushed from the
	// memtable, and whatever compactions rewrote (so far; they run behind the appends).
	var st leveldb.DBStats
	if err := s.db.Stats(&st); err != nil {
		b.Fatal(err)
	}
	blockBytes := float64(len(mustMarshal(b, proto))) * float64(n)
	b.ReportMetric(float64(st.IOWrite)/blockBytes, "disk-B/B")
}
