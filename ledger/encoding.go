package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/util"
	"google.golang.org/protobuf/encoding/protowire"
)

// Sentinel errors. Every error returned by this package that corresponds to
// one of these wraps it, so callers test with errors.Is; the message carries
// the channel and, where relevant, the block number.
var (
	// ErrNotFound is returned for a block number at or above the height.
	ErrNotFound = errors.New("block not found")
	// ErrEmpty is returned by LastBlock on a store of height 0.
	ErrEmpty = errors.New("ledger is empty")
	// ErrClosed is returned by operations on a closed store, provider or iterator.
	ErrClosed = errors.New("ledger closed")
	// ErrCorrupt is returned when on-disk state contradicts the store's
	// invariants or LevelDB reports corruption.
	ErrCorrupt = errors.New("ledger corrupt")
	// ErrInvalidBlock is returned by Append for a nil block, a block without
	// a header, or a block whose number is not the next one.
	ErrInvalidBlock = errors.New("invalid block")
)

const (
	blockKeyPrefix = 'b'
	blockKeyLen    = 1 + 8
	markerSuffix   = 'h'
	markerKeyLen   = blockKeyLen + 1
	formatVersion  = 2
)

var (
	// formatKey holds the format version. It sorts after every block key, so it is written
	// on its own and flushed into a table of its own before the first block (see
	// Store.initFormat): sharing a table with blocks would give that table a key range
	// reaching over every later block.
	formatKey = []byte{'v'}
	// v1HeightKey is format 1's height, only read to upgrade such a store (see upgradeV1).
	v1HeightKey = []byte{'h'}

	// blockRange holds every block and height-marker key.
	blockRange = &util.Range{Start: []byte{blockKeyPrefix}, Limit: []byte{blockKeyPrefix + 1}}
)

func blockKey(n uint64) []byte {
	k := make([]byte, blockKeyLen)
	k[0] = blockKeyPrefix
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

// markerKey is the height marker an Append ending with block n writes: it sorts right
// after block n's key and before block n+1's, so every key of an Append lies after every
// key of the Appends before it.
func markerKey(n uint64) []byte {
	k := make([]byte, markerKeyLen)
	copy(k, blockKey(n))
	k[blockKeyLen] = markerSuffix
	return k
}

// parseMarkerKey reports the block number a height marker follows, or false if k is not
// one.
func parseMarkerKey(k []byte) (uint64, bool) {
	if len(k) != markerKeyLen || k[0] != blockKeyPrefix || k[blockKeyLen] != markerSuffix {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:blockKeyLen]), true
}

// parseBlockKey reports the block number of k, or false if k is not a
// well-formed block key (a foreign key sharing the prefix byte).
func parseBlockKey(k []byte) (uint64, bool) {
	if len(k) != blockKeyLen || k[0] != blockKeyPrefix {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

func encodeUint64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: value is %d bytes, want 8", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// rawBlockNumber extracts header.number from a marshalled cb.Block by
// walking the wire format instead of unmarshalling. This lets the raw read
// path (Deliver forwarding stored bytes) reject a value that is not the
// block it claims to be without paying for decoding the payload, which
// dominates a block's size. It follows protobuf merge semantics: repeated
// header occurrences merge, and the last number wins.
func rawBlockNumber(raw []byte) (uint64, error) {
	var (
		number    uint64
		sawHeader bool
	)
	b := raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("%w: malformed block encoding: %w", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 {
			if typ != protowire.BytesType {
				return 0, fmt.Errorf("%w: block header has wire type %d", ErrCorrupt, typ)
			}
			hdr, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, fmt.Errorf("%w: malformed block header: %w", ErrCorrupt, protowire.ParseError(n))
			}
			b = b[n:]
			sawHeader = true
			hn, ok, err := headerNumber(hdr)
			if err != nil {
				return 0, err
			}
			if ok {
				number = hn
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, fmt.Errorf("%w: malformed block field %d: %w", ErrCorrupt, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !sawHeader {
		return 0, fmt.Errorf("%w: block has no header", ErrCorrupt)
	}
	return number, nil
}

// headerNumber returns the last number field in an encoded BlockHeader and
// whether one was present (proto3 omits a zero number).
func headerNumber(b []byte) (uint64, bool, error) {
	var (
		number uint64
		found  bool
	)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false, fmt.Errorf("%w: malformed block header: %w", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 {
			if typ != protowire.VarintType {
				return 0, false, fmt.Errorf("%w: block number has wire type %d", ErrCorrupt, typ)
			}
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, false, fmt.Errorf("%w: malformed block number: %w", ErrCorrupt, protowire.ParseError(n))
			}
			b = b[n:]
			number, found = v, true
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, false, fmt.Errorf("%w: malformed block header field %d: %w", ErrCorrupt, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return number, found, nil
}
