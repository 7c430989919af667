package ledger

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

func TestAppendGetHeightLastBlock(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	s := mustOpen(t, p, "mychannel")
	if s.ChannelID() != "mychannel" {
		t.Fatalf("ChannelID = %q", s.ChannelID())
	}
	if h := s.Height(); h != 0 {
		t.Fatalf("empty height = %d", h)
	}
	_, err := s.LastBlock()
	wantErr(t, err, ErrEmpty, `"mychannel"`)
	_, err = s.Block(0)
	wantErr(t, err, ErrNotFound, `"mychannel"`, blockFrag(0))

	want := blocksFrom(t, 0, 4)
	if err := s.Append(want[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(want[1:]...); err != nil {
		t.Fatal(err)
	}
	if h := s.Height(); h != 4 {
		t.Fatalf("height = %d, want 4", h)
	}
	for i, w := range want {
		got, err := s.Block(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, w) {
			t.Fatalf("block %d differs", i)
		}
		raw, err := s.RawBlock(uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, mustMarshal(t, w)) {
			t.Fatalf("raw block %d is not the proto.Marshal encoding", i)
		}
	}
	last, err := s.LastBlock()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(last, want[3]) {
		t.Fatal("last block differs")
	}
	_, err = s.Block(4)
	wantErr(t, err, ErrNotFound, `"mychannel"`, blockFrag(4))
	_, err = s.RawBlock(1 << 62)
	wantErr(t, err, ErrNotFound, `"mychannel"`)

	// The cached tip is one slice shared by every reader (Deliver sends it to every follower
	// without a copy each).
	raw, _ := s.RawBlock(3)
	again, _ := s.RawBlock(3)
	if !bytes.Equal(raw, mustMarshal(t, want[3])) || &raw[0] != &again[0] {
		t.Fatal("the tip is not served from one shared encoding")
	}
	if err := s.Append(); err != nil || s.Height() != 4 {
		t.Fatalf("empty Append: err=%v height=%d", err, s.Height())
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	s := mustOpen(t, p, "ch")
	if err := s.Append(blocksFrom(t, 0, 2)...); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		blocks []*cb.Block
		frags  []string
	}{
		{"nil block", []*cb.Block{nil}, []string{"index 0", "nil"}},
		{"nil header", []*cb.Block{{Data: &cb.BlockData{}}}, []string{"no header"}},
		{"gap", []*cb.Block{testBlock(t, 3, 1, 1)}, []string{"number 3", "want 2"}},
		{"repeat", []*cb.Block{testBlock(t, 1, 1, 1)}, []string{"number 1", "want 2"}},
		{"bad in middle", []*cb.Block{testBlock(t, 2, 1, 1), testBlock(t, 3, 1, 1), testBlock(t, 5, 1, 1)},
			[]string{"index 2", "number 5", "want 4"}},
		{"nil in middle", []*cb.Block{testBlock(t, 2, 1, 1), nil}, []string{"index 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Append(c.blocks...)
			wantErr(t, err, ErrInvalidBlock, append([]string{`"ch"`}, c.frags...)...)
			if h := s.Height(); h != 2 {
				t.Fatalf("height changed to %d by a refused append", h)
			}
			if _, err := s.Block(2); !errors.Is(err, ErrNotFound) {
				t.Fatalf("refused append left block 2 readable: %v", err)
			}
		})
	}
}

func TestReopenResumes(t *testing.T) {
	root := t.TempDir()
	p := newTestProvider(t, root)
	s := mustOpen(t, p, "ch")
	if err := s.Append(blocksFrom(t, 0, 5)...); err != nil {
		t.Fatal(err)
	}
	want := populate(t, s, 10)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// Two reopen cycles: the first replays goleveldb's journal, the second
	// reads from the tables that replay produced.
	for cycle := 0; cycle < 2; cycle++ {
		p2 := newTestProvider(t, root)
		s2 := mustOpen(t, p2, "ch")
		if h := s2.Height(); h != uint64(len(want)) {
			t.Fatalf("cycle %d: height = %d, want %d", cycle, h, len(want))
		}
		if got := allRaw(t, s2); !reflect.DeepEqual(got, want) {
			t.Fatalf("cycle %d: blocks differ after reopen", cycle)
		}
		last, err := s2.LastBlock()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustMarshal(t, last), want[len(want)-1]) {
			t.Fatalf("cycle %d: last block differs", cycle)
		}
		if err := s2.Verify(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := p2.Close(); err != nil {
			t.Fatal(err)
		}
	}

	p3 := newTestProvider(t, root)
	s3 := mustOpen(t, p3, "ch")
	if err := s3.Append(testBlock(t, 14, 1, 1)); err == nil {
		t.Fatal("append of an existing number accepted after reopen")
	}
	if err := s3.Append(testBlock(t, 15, 1, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestProviderOpenSameStore(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	a := mustOpen(t, p, "ch")
	b := mustOpen(t, p, "ch")
	if a != b {
		t.Fatal("Open returned a different store for an open channel")
	}
	if err := a.Append(blocksFrom(t, 0, 1)...); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := mustOpen(t, p, "ch")
	if c == a {
		t.Fatal("Open returned a closed store")
	}
	if c.Height() != 1 {
		t.Fatalf("reopened height = %d", c.Height())
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b", string(make([]byte, 300))} {
		if _, err := p.Open(bad); err == nil {
			t.Fatalf("Open(%q) accepted", bad)
		}
	}
}

func TestChannels(t *testing.T) {
	root := t.TempDir()
	p := newTestProvider(t, root)
	got, err := p.Channels()
	if err != nil || len(got) != 0 {
		t.Fatalf("fresh Channels = %v, %v", got, err)
	}
	for _, ch := range []string{"charlie", "alpha", "bravo"} {
		s := mustOpen(t, p, ch)
		if err := s.Append(blocksFrom(t, 0, 2)...); err != nil {
			t.Fatal(err)
		}
	}
	mustOpen(t, p, "empty")
	if err := mustOpen(t, p, "bravo").Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha", "bravo", "charlie"}
	// Mixed: some stores open, one closed (read from disk), one empty.
	if got, err := p.Channels(); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Channels = %v, %v; want %v", got, err, want)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Channels(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Channels on closed provider: %v", err)
	}
	p2 := newTestProvider(t, root)
	if got, err := p2.Channels(); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Channels after restart = %v, %v; want %v", got, err, want)
	}
}

func TestClosedStoreAndProvider(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	s := mustOpen(t, p, "ch")
	if err := s.Append(blocksFrom(t, 0, 2)...); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Append(testBlock(t, 2, 1, 1)), ErrClosed, `"ch"`)
	_, err := s.Block(0)
	wantErr(t, err, ErrClosed, `"ch"`)
	_, err = s.RawBlock(1)
	wantErr(t, err, ErrClosed, `"ch"`)
	_, err = s.LastBlock()
	wantErr(t, err, ErrClosed, `"ch"`)
	wantErr(t, s.Verify(context.Background()), ErrClosed, `"ch"`)
	_, _, err = s.Iterator(0).NextRaw(context.Background())
	wantErr(t, err, ErrClosed, `"ch"`)
	_, err = p.Open("ch")
	wantErr(t, err, ErrClosed, `"ch"`)
	if err := p.Close(); err != nil {
		t.Fatalf("second provider Close: %v", err)
	}
}

func TestRawBlockNumber(t *testing.T) {
	for _, n := range []uint64{0, 1, 127, 128, 1 << 40} {
		raw := mustMarshal(t, testBlock(t, n, 2, 8))
		got, err := rawBlockNumber(raw)
		if err != nil || got != n {
			t.Fatalf("rawBlockNumber = %d, %v; want %d", got, err, n)
		}
	}
	bad := [][]byte{
		nil,
		{0xff},
		{0x0a, 0x05, 0x08},             // header length past end
		{0x08, 0x01},                   // field 1 with varint type
		{0x12, 0x00},                   // data only, no header
		{0x0a, 0x02, 0x0a, 0x00},       // header number with bytes type
		bytes.Repeat([]byte{0x80}, 20), // endless varint
	}
	for _, b := range bad {
		if _, err := rawBlockNumber(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("rawBlockNumber(%x) = %v, want ErrCorrupt", b, err)
		}
	}
}

// Open racing with Close of the same store must neither deadlock nor fail
// on goleveldb's directory lock.
func TestOpenDuringClose(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	for i := 0; i < 20; i++ {
		s := mustOpen(t, p, "ch")
		done := make(chan error, 1)
		go func() { done <- s.Close() }()
		s2, err := p.Open("ch")
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s2 != s {
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
