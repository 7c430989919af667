package ledger

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	"github.com/syndtr/goleveldb/leveldb"
)

// testBlock builds a block shaped like an orderer block: a header, envs
// envelopes of envSize random bytes, and the four metadata slots.
func testBlock(tb testing.TB, n uint64, envs, envSize int) *cb.Block {
	tb.Helper()
	data := make([][]byte, envs)
	for i := range data {
		data[i] = make([]byte, envSize)
		if _, err := rand.Read(data[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return &cb.Block{
		Header: &cb.BlockHeader{
			Number:       n,
			PreviousHash: bytes.Repeat([]byte{byte(n)}, 32),
			DataHash:     bytes.Repeat([]byte{byte(n + 1)}, 32),
		},
		Data:     &cb.BlockData{Data: data},
		Metadata: &cb.BlockMetadata{Metadata: [][]byte{{1}, {}, {2}, {}}},
	}
}

func blocksFrom(tb testing.TB, from uint64, count int) []*cb.Block {
	tb.Helper()
	out := make([]*cb.Block, count)
	for i := range out {
		out[i] = testBlock(tb, from+uint64(i), 3, 64)
	}
	return out
}

func mustMarshal(tb testing.TB, b *cb.Block) []byte {
	tb.Helper()
	raw, err := proto.Marshal(b)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func newTestProvider(tb testing.TB, root string) *Provider {
	tb.Helper()
	p, err := NewProvider(root)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

func mustOpen(tb testing.TB, p *Provider, ch string) *Store {
	tb.Helper()
	s, err := p.Open(ch)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// populate appends count fresh blocks one Append at a time and returns the
// marshalled bytes of every block in the store afterwards.
func populate(tb testing.TB, s *Store, count int) [][]byte {
	tb.Helper()
	for i := 0; i < count; i++ {
		if err := s.Append(testBlock(tb, s.Height(), 3, 64)); err != nil {
			tb.Fatal(err)
		}
	}
	return allRaw(tb, s)
}

// populatedOnDisk writes count blocks to channel "ch" of a new root, one Append each, and
// closes it: the starting point for fabricating on-disk states with withRawDB. It returns
// the root and the marshalled blocks.
func populatedOnDisk(tb testing.TB, count int) (string, [][]byte) {
	tb.Helper()
	root := tb.TempDir()
	p := newTestProvider(tb, root)
	want := populate(tb, mustOpen(tb, p, "ch"), count)
	if err := p.Close(); err != nil {
		tb.Fatal(err)
	}
	return root, want
}

func allRaw(tb testing.TB, s *Store) [][]byte {
	tb.Helper()
	out := make([][]byte, s.Height())
	for i := range out {
		raw, err := s.RawBlock(uint64(i))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = raw
	}
	return out
}

// withRawDB opens a channel's database directly with goleveldb, bypassing
// the store, to fabricate on-disk states a crash or a foreign writer could
// leave behind.
func withRawDB(tb testing.TB, root, ch string, fn func(db *leveldb.DB)) {
	tb.Helper()
	db, err := leveldb.OpenFile(filepath.Join(root, "chains", ch), nil)
	if err != nil {
		tb.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
}

// wantErr asserts err wraps target and that its message names every one of
// the given fragments (channel, block number, ...).
func wantErr(tb testing.TB, err, target error, fragments ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got nil error, want %v", target)
	}
	if target != nil && !errors.Is(err, target) {
		tb.Fatalf("error %q does not wrap %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			tb.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func blockFrag(n uint64) string { return fmt.Sprintf("block %d", n) }
