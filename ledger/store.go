package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Store is one channel's block chain. All methods are safe for concurrent
// use; Append calls are serialised.
type Store struct {
	channelID string
	db        *leveldb.DB
	onClose   func(*Store)

	// writeMu serialises Append so that the height check and the batch
	// write happen as one step with respect to other appenders.
	writeMu sync.Mutex

	// lifeMu is held shared across every database call and exclusively by
	// Close, so no goroutine ever touches the goleveldb handle while it is
	// being torn down.
	lifeMu sync.RWMutex
	closed bool // guarded by lifeMu

	// height is read lock-free by Height and bounds checks; it is only
	// stored under mu, together with the wake channel swap, so a waiter that
	// observes the old height is guaranteed to hold the wake channel that the
	// next Append closes.
	height  atomic.Uint64
	mu      sync.Mutex
	wake    chan struct{} // guarded by mu; closed and replaced by every Append
	lastRaw []byte        // guarded by mu; encoding of block height-1

	// done is closed at the start of Close, before waiting for lifeMu, so
	// waiting iterators are released even while an Append is still syncing.
	done      chan struct{}
	closeOnce sync.Once
}

// dbOptions spells out goleveldb's default strictness on purpose; see the
// package documentation for why StrictJournal stays off.
func dbOptions() *opt.Options {
	return &opt.Options{
		Strict: opt.StrictJournalChecksum | opt.StrictBlockChecksum | opt.StrictCompaction | opt.StrictReader,
	}
}

func openStore(channelID, dir string, onClose func(*Store)) (*Store, error) {
	db, err := leveldb.OpenFile(dir, dbOptions())
	if err != nil {
		return nil, fmt.Errorf("ledger: channel %q: open database %s: %w", channelID, dir, dbErr(err))
	}
	s := &Store{
		channelID: channelID,
		db:        db,
		onClose:   onClose,
		wake:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if err := s.load(); err != nil {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, s.errorf("close after failed open: %w", cerr))
		}
		return nil, err
	}
	return s, nil
}

// load derives the height from the last height marker and checks that the tip
// block it points at is really there. Holes further down are found lazily by
// reads or eagerly by Verify; scanning the whole chain here would make every
// restart cost a full read of the ledger. A format-1 store is upgraded once
// its tip has been found.
func (s *Store) load() error {
	h, format, err := readHeight(s.db)
	if err != nil {
		return s.errorf("read height: %w", err)
	}
	if h > 0 {
		raw, err := s.readBlockFromDB(h-1, h)
		if err != nil {
			return err
		}
		s.height.Store(h)
		s.lastRaw = raw
	}
	switch format {
	case 1:
		if err := upgradeV1(s.db, h); err != nil {
			return s.errorf("upgrade from format 1: %w", err)
		}
	case 0:
		if err := s.initFormat(); err != nil {
			return s.errorf("record format version: %w", err)
		}
	}
	return nil
}

// readHeight returns the height of the chain in db and the format it is stored in (0 for
// a store never appended to), without writing.
func readHeight(db *leveldb.DB) (uint64, byte, error) {
	format, err := db.Get(formatKey, nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		// Nothing was ever appended, so there must be no height either.
		if v, err := db.Get(v1HeightKey, nil); err == nil {
			if h, err := decodeUint64(v); err != nil || h > 0 {
				return 0, 0, fmt.Errorf("%w: a format 1 height but no format version key", ErrCorrupt)
			}
		}
		h, err := lastMarker(db)
		if err != nil {
			return 0, 0, err
		}
		if h > 0 {
			return 0, 0, fmt.Errorf("%w: height marker for %d blocks but no format version key", ErrCorrupt, h)
		}
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("read format version: %w", dbErr(err))
	case len(format) == 1 && format[0] == formatVersion:
		h, err := lastMarker(db)
		return h, formatVersion, err
	case len(format) == 1 && format[0] == 1:
		v, err := db.Get(v1HeightKey, nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			return 0, 1, nil
		}
		if err != nil {
			return 0, 0, dbErr(err)
		}
		h, err := decodeUint64(v)
		if err != nil {
			return 0, 0, fmt.Errorf("format 1 height: %w", err)
		}
		return h, 1, nil
	default:
		return 0, 0, fmt.Errorf("%w: unsupported format version %x", ErrCorrupt, format)
	}
}

// lastMarker returns the height recorded by the last height marker (0 if there is none; a
// marker always records at least 1). Block keys after it were not written by a completed
// Append and are not part of the chain.
func lastMarker(db *leveldb.DB) (uint64, error) {
	it := db.NewIterator(blockRange, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	for ok := it.Last(); ok; ok = it.Prev() {
		n, isMarker := parseMarkerKey(it.Key())
		if !isMarker {
			continue
		}
		h, err := decodeUint64(it.Value())
		if err != nil {
			return 0, fmt.Errorf("height marker after block %d: %w", n, err)
		}
		if h != n+1 {
			return 0, fmt.Errorf("%w: height marker after block %d records height %d", ErrCorrupt, n, h)
		}
		return h, nil
	}
	return 0, dbErr(it.Error())
}

// upgradeV1 rewrites a format-1 store's metadata as format 2 in one synced batch: the
// height key becomes a marker after the tip block. The tables format 1 wrote keep their
// key ranges, so an upgraded store's compactions still rewrite some blocks until those
// tables have been merged down; a new store's never do.
func upgradeV1(db *leveldb.DB, h uint64) error {
	batch := new(leveldb.Batch)
	batch.Delete(v1HeightKey)
	if h > 0 {
		batch.Put(markerKey(h-1), encodeUint64(h))
	}
	batch.Put(formatKey, []byte{formatVersion})
	return dbErr(db.Write(batch, &opt.WriteOptions{Sync: true}))
}

// initFormat records the format of a store that has never been written to, before its
// first block. The version key is synced and then flushed from the memtable into a table
// that holds nothing else: goleveldb only ever moves such a table between levels, and no
// table of blocks overlaps it. A crash before the first Append leaves an empty store
// that already has its format, which opens as empty.
func (s *Store) initFormat() error {
	if err := s.db.Put(formatKey, []byte{formatVersion}, &opt.WriteOptions{Sync: true}); err != nil {
		return dbErr(err)
	}
	return dbErr(s.db.CompactRange(util.Range{Start: formatKey, Limit: append(formatKey, 0)}))
}

// ChannelID returns the channel this store belongs to.
func (s *Store) ChannelID() string { return s.channelID }

// Height returns the number of blocks in the chain, i.e. the number the next
// appended block must carry.
func (s *Store) Height() uint64 { return s.height.Load() }

// Append adds blocks to the end of the chain. Their numbers must be exactly
// Height(), Height()+1, ... . All blocks and the new height marker are written
// in one synced batch, so either all of them survive a crash or none do. Hash
// linkage is the caller's concern.
func (s *Store) Append(blocks ...*cb.Block) error {
	if len(blocks) == 0 {
		return nil
	}
	// Marshal before taking locks: encoding is the expensive CPU part and
	// does not depend on the store's state.
	raws := make([][]byte, len(blocks))
	for i, b := range blocks {
		if b == nil {
			return s.errorf("append: block at index %d is nil: %w", i, ErrInvalidBlock)
		}
		if b.Header == nil {
			return s.errorf("append: block at index %d has no header: %w", i, ErrInvalidBlock)
		}
		raw, err := proto.Marshal(b)
		if err != nil {
			return s.errorf("append: block %d: marshal: %w", b.Header.Number, err)
		}
		raws[i] = raw
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed {
		return s.errorf("append: %w", ErrClosed)
	}

	h := s.height.Load()
	for i, b := range blocks {
		if want := h + uint64(i); b.Header.Number != want {
			return s.errorf("append: block at index %d has number %d, want %d (height %d): %w",
				i, b.Header.Number, want, h, ErrInvalidBlock)
		}
	}

	newHeight := h + uint64(len(blocks))
	// The small records go first: goleveldb grows a batch by the size of the record being
	// added plus what it already holds, so a block added to a nearly empty batch costs one
	// allocation of its size rather than twice that.
	batch := new(leveldb.Batch)
	batch.Put(markerKey(newHeight-1), encodeUint64(newHeight))
	for i, raw := range raws {
		batch.Put(blockKey(h+uint64(i)), raw)
	}
	if err := s.db.Write(batch, &opt.WriteOptions{Sync: true}); err != nil {
		return s.errorf("append blocks %d-%d: write: %w", h, newHeight-1, dbErr(err))
	}

	s.mu.Lock()
	s.height.Store(newHeight)
	s.lastRaw = raws[len(raws)-1]
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// RawBlock returns the stored encoding of block n, exactly as produced by
// proto.Marshal when it was appended. Callers must not modify it: the tip
// block is one slice shared by all readers.
func (s *Store) RawBlock(n uint64) ([]byte, error) {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed {
		return nil, s.errorf("block %d: %w", n, ErrClosed)
	}
	h := s.height.Load()
	if n >= h {
		return nil, s.errorf("block %d: %w (height %d)", n, ErrNotFound, h)
	}
	if raw := s.cachedRaw(n); raw != nil {
		return raw, nil
	}
	return s.readBlockFromDB(n, h)
}

// cachedRaw returns the tip block if n is still the tip. Followers of a live
// chain almost always ask for the block that was just appended; they all get
// the same slice, which is never written to again.
func (s *Store) cachedRaw(n uint64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastRaw == nil || s.height.Load() != n+1 {
		return nil
	}
	return s.lastRaw
}

// readBlockFromDB reads block n, which the caller has established is below
// height h, and checks that the stored bytes claim to be block n.
func (s *Store) readBlockFromDB(n, h uint64) ([]byte, error) {
	raw, err := s.db.Get(blockKey(n), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, s.errorf("block %d: %w: missing below height %d", n, ErrCorrupt, h)
	}
	if err != nil {
		return nil, s.errorf("block %d: read: %w", n, dbErr(err))
	}
	got, err := rawBlockNumber(raw)
	if err != nil {
		return nil, s.errorf("block %d: %w", n, err)
	}
	if got != n {
		return nil, s.errorf("block %d: %w: stored block carries number %d", n, ErrCorrupt, got)
	}
	return raw, nil
}

// Block returns block n, or an error wrapping ErrNotFound if n >= Height().
func (s *Store) Block(n uint64) (*cb.Block, error) {
	raw, err := s.RawBlock(n)
	if err != nil {
		return nil, err
	}
	return s.decode(n, raw)
}

// LastBlock returns the block at Height()-1, or an error wrapping ErrEmpty.
func (s *Store) LastBlock() (*cb.Block, error) {
	s.lifeMu.RLock()
	closed := s.closed
	s.lifeMu.RUnlock()
	if closed {
		return nil, s.errorf("last block: %w", ErrClosed)
	}
	s.mu.Lock()
	h, raw := s.height.Load(), s.lastRaw
	s.mu.Unlock()
	if h == 0 {
		return nil, s.errorf("last block: %w", ErrEmpty)
	}
	// Unmarshal copies bytes fields out of its input, so decoding the
	// shared cached slice does not let the caller alias it.
	return s.decode(h-1, raw)
}

func (s *Store) decode(n uint64, raw []byte) (*cb.Block, error) {
	b := new(cb.Block)
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, s.errorf("block %d: %w: unmarshal: %w", n, ErrCorrupt, err)
	}
	if b.Header == nil {
		return nil, s.errorf("block %d: %w: no header", n, ErrCorrupt)
	}
	if b.Header.Number != n {
		return nil, s.errorf("block %d: %w: stored block carries number %d", n, ErrCorrupt, b.Header.Number)
	}
	return b, nil
}

// Verify scans every block below the height and checks that none is missing
// and each carries its own number. Open only checks the tip, so Verify is
// the way to prove a whole chain intact (e.g. after restoring a backup). It
// holds the store open for the duration of the scan; cancel ctx to stop it.
func (s *Store) Verify(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed {
		return s.errorf("verify: %w", ErrClosed)
	}
	h := s.height.Load()
	it := s.db.NewIterator(&util.Range{Start: blockKey(0), Limit: blockKey(h)}, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	var want uint64
	for it.Next() {
		if want%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n, ok := parseBlockKey(it.Key())
		if !ok {
			// A height marker, or a key this package never writes; neither is a block.
			continue
		}
		if n != want {
			return s.errorf("block %d: %w: missing below height %d", want, ErrCorrupt, h)
		}
		got, err := rawBlockNumber(it.Value())
		if err != nil {
			return s.errorf("block %d: %w", n, err)
		}
		if got != n {
			return s.errorf("block %d: %w: stored block carries number %d", n, ErrCorrupt, got)
		}
		want++
	}
	if err := it.Error(); err != nil {
		return s.errorf("verify: block %d: read: %w", want, dbErr(err))
	}
	if want != h {
		return s.errorf("block %d: %w: missing below height %d", want, ErrCorrupt, h)
	}
	return nil
}

// Close closes the database. Iterators waiting for blocks return ErrClosed
// immediately; Close itself waits for in-flight reads and an in-flight
// Append to finish. Closing twice is a no-op.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.lifeMu.Lock()
		s.closed = true
		if cerr := s.db.Close(); cerr != nil {
			err = s.errorf("close: %w", dbErr(cerr))
		}
		s.lifeMu.Unlock()
		if s.onClose != nil {
			s.onClose(s)
		}
	})
	return err
}

func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf("ledger: channel %q: "+format, append([]any{s.channelID}, args...)...)
}

// dbErr maps goleveldb errors onto this package's sentinels while keeping
// the original in the chain. goleveldb's IsCorrupted only recognises its
// own concrete types unwrapped, so errors.As is used as well.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, leveldb.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	var c *lerrors.ErrCorrupted
	if lerrors.IsCorrupted(err) || errors.As(err, &c) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
