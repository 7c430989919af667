package ledger

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

// waitTimeout bounds every wait for something that should happen promptly;
// it only fires when the code under test is broken.
const waitTimeout = 5 * time.Second

type nextResult struct {
	block *cb.Block
	err   error
}

func nextAsync(ctx context.Context, it *Iterator) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		b, err := it.Next(ctx)
		ch <- nextResult{b, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan nextResult) nextResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("Next did not return")
		return nextResult{}
	}
}

// assertBlocked checks that Next has not returned. A short grace period is
// the only way to observe "still waiting"; it cannot cause false failures.
func assertBlocked(t *testing.T, ch <-chan nextResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Next returned early: %v, %v", r.block, r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestIteratorWaitsAndWakes(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "ch")
	if err := s.Append(blocksFrom(t, 0, 2)...); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	it := s.Iterator(0)
	defer it.Close()
	for n := uint64(0); n < 2; n++ {
		b, err := it.Next(ctx)
		if err != nil || b.Header.Number != n {
			t.Fatalf("Next = %v, %v; want block %d", b, err, n)
		}
	}

	ch := nextAsync(ctx, it)
	assertBlocked(t, ch)
	if err := s.Append(blocksFrom(t, 2, 1)...); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, ch); r.err != nil || r.block.Header.Number != 2 {
		t.Fatalf("woken Next = %v, %v; want block 2", r.block, r.err)
	}

	// Starting beyond the height waits through several appends.
	ahead := s.Iterator(5)
	ch = nextAsync(ctx, ahead)
	for n := uint64(3); n <= 5; n++ {
		assertBlocked(t, ch)
		if err := s.Append(blocksFrom(t, n, 1)...); err != nil {
			t.Fatal(err)
		}
	}
	if r := receive(t, ch); r.err != nil || r.block.Header.Number != 5 {
		t.Fatalf("Next = %v, %v; want block 5", r.block, r.err)
	}

	n, raw, err := s.Iterator(4).NextRaw(ctx)
	want, _ := s.RawBlock(4)
	if err != nil || n != 4 || !bytes.Equal(raw, want) {
		t.Fatalf("NextRaw = %d, %v; want stored block 4", n, err)
	}
}

func TestIteratorContextCancel(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "ch")
	it := s.Iterator(0)

	ctx, cancel := context.WithCancel(context.Background())
	ch := nextAsync(ctx, it)
	assertBlocked(t, ch)
	cancel()
	if r := receive(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Next after cancel = %v", r.err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := it.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after deadline = %v", err)
	}

	// A cancelled call does not consume a block.
	if err := s.Append(blocksFrom(t, 0, 1)...); err != nil {
		t.Fatal(err)
	}
	if b, err := it.Next(context.Background()); err != nil || b.Header.Number != 0 {
		t.Fatalf("Next = %v, %v; want block 0", b, err)
	}
}

func TestCloseReleasesWaiters(t *testing.T) {
	p := newTestProvider(t, t.TempDir())
	s := mustOpen(t, p, "ch")
	ctx := context.Background()

	var chans []<-chan nextResult
	for i := 0; i < 8; i++ {
		chans = append(chans, nextAsync(ctx, s.Iterator(uint64(i))))
	}
	own := s.Iterator(0)
	ownCh := nextAsync(ctx, own)
	assertBlocked(t, ownCh)

	own.Close()
	r := receive(t, ownCh)
	wantErr(t, r.err, ErrClosed, `"ch"`)
	if _, err := own.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next on closed iterator = %v", err)
	}
	own.Close() // idempotent

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		wantErr(t, receive(t, ch).err, ErrClosed, `"ch"`)
	}
}

func TestManyConcurrentIterators(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "ch")
	const total = 120
	blocks := blocksFrom(t, 0, total)
	want := make([][]byte, total)
	for i, b := range blocks {
		want[i] = mustMarshal(t, b)
	}
	if err := s.Append(blocks[:10]...); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const readers = 32
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		start := uint64(r * 3 % total)
		wg.Add(1)
		go func() {
			defer wg.Done()
			it := s.Iterator(start)
			defer it.Close()
			for n := start; n < total; n++ {
				got, raw, err := it.NextRaw(ctx)
				if err != nil {
					errs <- err
					return
				}
				if got != n || !bytes.Equal(raw, want[n]) {
					errs <- errors.New("iterator returned the wrong block")
					return
				}
			}
		}()
	}
	// Appends of varying batch sizes race with the readers.
	for next := 10; next < total; {
		k := min(1+next%7, total-next)
		if err := s.Append(blocks[next : next+k]...); err != nil {
			t.Fatal(err)
		}
		next += k
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Close must not deadlock or race with in-flight appends and reads.
func TestCloseDuringActivity(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "ch")
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for {
			if err := s.Append(testBlock(t, s.Height(), 1, 16)); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				return
			}
		}
	}()
	for i := 0; i < 2; i++ {
		go func() {
			defer wg.Done()
			it := s.Iterator(0)
			for {
				if _, err := it.Next(ctx); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
			}
		}()
	}
	it := s.Iterator(3)
	if _, err := it.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestWaitRawBlock(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "mychannel")
	if err := s.Append(blocksFrom(t, 0, 2)...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if raw, err := s.WaitRawBlock(ctx, 1); err != nil || !bytes.Equal(raw, mustRaw(t, s, 1)) {
		t.Fatalf("written block: %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		raw, _ := s.WaitRawBlock(ctx, 2)
		got <- raw
	}()
	if err := s.Append(blocksFrom(t, 2, 1)...); err != nil {
		t.Fatal(err)
	}
	if raw := <-got; !bytes.Equal(raw, mustRaw(t, s, 2)) {
		t.Fatal("the waiting read did not return block 2")
	}
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if _, err := s.WaitRawBlock(short, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("block never written: got %v", err)
	}
}

func mustRaw(t *testing.T, s *Store, n uint64) []byte {
	t.Helper()
	raw, err := s.RawBlock(n)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
