package ledger

import (
	"context"
	"sync"

	cb "github.com/hyperledger/fabric-protos-go/common"
)

// Iterator reads a chain forward from a starting block, waiting at the tip
// for new blocks. It holds no goroutine and no database resources between
// calls, so an abandoned iterator costs nothing; Close exists to release a
// goroutine blocked in Next from elsewhere.
//
// Next and NextRaw must not be called concurrently on one Iterator; Close
// may be called from any goroutine at any time.
type Iterator struct {
	s         *Store
	next      uint64
	done      chan struct{}
	closeOnce sync.Once
}

// Iterator returns an iterator whose first Next yields block start. start
// may be at or beyond the current height, in which case Next waits.
func (s *Store) Iterator(start uint64) *Iterator {
	return &Iterator{s: s, next: start, done: make(chan struct{})}
}

// Next returns the next block, waiting until it is appended. It returns
// ctx.Err() if ctx ends first and an error wrapping ErrClosed if the store
// or the iterator is closed.
func (it *Iterator) Next(ctx context.Context) (*cb.Block, error) {
	n, raw, err := it.NextRaw(ctx)
	if err != nil {
		return nil, err
	}
	return it.s.decode(n, raw)
}

// NextRaw is Next without decoding: it returns the block number and the
// stored encoding, for forwarding to Deliver clients as is.
func (it *Iterator) NextRaw(ctx context.Context) (uint64, []byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	s := it.s
	for {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		select {
		case <-it.done:
			return 0, nil, s.errorf("iterator at block %d: %w", it.next, ErrClosed)
		case <-s.done:
			return 0, nil, s.errorf("iterator at block %d: %w", it.next, ErrClosed)
		default:
		}

		s.mu.Lock()
		h, wake := s.height.Load(), s.wake
		s.mu.Unlock()

		if it.next < h {
			raw, err := s.RawBlock(it.next)
			if err != nil {
				return 0, nil, err
			}
			n := it.next
			it.next++
			return n, raw, nil
		}

		select {
		case <-wake:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-it.done:
			return 0, nil, s.errorf("iterator at block %d: %w", it.next, ErrClosed)
		case <-s.done:
			return 0, nil, s.errorf("iterator at block %d: %w", it.next, ErrClosed)
		}
	}
}

// WaitRawBlock returns the stored encoding of block n (see RawBlock), waiting
// until it is appended or ctx ends.
func (s *Store) WaitRawBlock(ctx context.Context, n uint64) ([]byte, error) {
	if n < s.Height() {
		return s.RawBlock(n)
	}
	it := s.Iterator(n)
	defer it.Close()
	_, raw, err := it.NextRaw(ctx)
	return raw, err
}

// Close makes current and future Next calls return ErrClosed.
func (it *Iterator) Close() {
	it.closeOnce.Do(func() { close(it.done) })
}
