package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"math/big"
	"sync"
	"sync/atomic"
)

// Defaults of a Cache: tables for up to 64 keys (8.4 MiB), built on a key's 16th
// verification.
const (
	DefaultMaxKeys = 64
	DefaultMinUses = 16
)

// Cache verifies signatures with crypto/ecdsa until a key has verified MinUses times, and
// with a Table of the key from then on. It keeps at most MaxKeys keys (in two generations:
// a key used since the last turnover survives the next one), so a flood of one-off keys
// costs only their counting. Safe for concurrent use.
type Cache struct {
	maxKeys int
	minUses uint32

	mu       sync.RWMutex
	cur, old map[string]*entry
}

type entry struct {
	uses     atomic.Uint32
	building atomic.Bool
	table    atomic.Pointer[Table]
}

// NewCache returns a cache of at most maxKeys keys that builds a key's table at its minUses-th
// verification (defaults for values ≤ 0).
func NewCache(maxKeys, minUses int) *Cache {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if minUses <= 0 {
		minUses = DefaultMinUses
	}
	return &Cache{maxKeys: maxKeys, minUses: uint32(minUses), cur: map[string]*entry{}}
}

// Verify has the result of ecdsa.Verify(pub, hash, r, s). Keys of other curves go to
// crypto/ecdsa directly.
func (c *Cache) Verify(pub *ecdsa.PublicKey, hash []byte, r, s *big.Int) bool {
	if pub == nil || r == nil || s == nil {
		return false
	}
	if pub.Curve != elliptic.P256() || pub.X == nil || pub.Y == nil || !inRange(pub) {
		return ecdsa.Verify(pub, hash, r, s)
	}
	e := c.entry(pub)
	if t := e.table.Load(); t != nil {
		return t.Verify(hash, r, s)
	}
	ok := ecdsa.Verify(pub, hash, r, s)
	// Only a key that signs validly earns a table: garbage signatures under someone's key
	// make nobody build anything.
	if ok && e.uses.Add(1) >= c.minUses && e.building.CompareAndSwap(false, true) {
		if t, err := NewTable(pub); err == nil {
			e.table.Store(t)
		}
	}
	return ok
}

// Tables is the number of keys that have a table now.
func (c *Cache) Tables() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range []map[string]*entry{c.cur, c.old} {
		for _, e := range m {
			if e.table.Load() != nil {
				n++
			}
		}
	}
	return n
}

func (c *Cache) entry(pub *ecdsa.PublicKey) *entry {
	var k [64]byte
	pub.X.FillBytes(k[:32])
	pub.Y.FillBytes(k[32:])
	// Every envelope's check passes here, from every validator: hits in the current
	// generation share the lock; only a first sight or a move between generations writes.
	c.mu.RLock()
	e, ok := c.cur[string(k[:])]
	c.mu.RUnlock()
	if ok {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[string(k[:])]; ok {
		return e
	}
	e, ok = c.old[string(k[:])]
	if ok {
		delete(c.old, string(k[:]))
	} else {
		e = new(entry)
	}
	if len(c.cur) >= c.maxKeys/2 {
		c.old, c.cur = c.cur, make(map[string]*entry, c.maxKeys/2)
	}
	c.cur[string(k[:])] = e
	return e
}
