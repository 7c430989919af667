package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// writeV1 fabricates a format-1 store as the previous version of this package left it:
// blocks 0..n-1 and, after them, the height key and the version key (1).
func writeV1(t *testing.T, root string, n int, extra map[string][]byte) [][]byte {
	t.Helper()
	var want [][]byte
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		batch := new(leveldb.Batch)
		for i := range n {
			raw := mustMarshal(t, testBlock(t, uint64(i), 2, 32))
			want = append(want, raw)
			batch.Put(blockKey(uint64(i)), raw)
		}
		batch.Put(v1HeightKey, encodeUint64(uint64(n)))
		batch.Put(formatKey, []byte{1})
		for k, v := range extra {
			batch.Put([]byte(k), v)
		}
		if err := db.Write(batch, nil); err != nil {
			t.Fatal(err)
		}
	})
	return want
}

// A store in this format is refused by the previous version of this package, which only
// knew format 1 and checked the version key: it must not take a chain for empty.
func TestFormatRefusedByFormat1Readers(t *testing.T) {
	root, _ := populatedOnDisk(t, 2)
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if v, err := db.Get(formatKey, nil); err != nil || len(v) != 1 || v[0] == 1 {
			t.Fatalf("version key %q = %x, %v; a format 1 reader would accept it", formatKey, v, err)
		}
	})
}

// A format-1 store opens with the same chain, is rewritten as format 2 (no key after the
// blocks remains), ignores the block keys format 1 ignored, and takes appends.
func TestUpgradeFromFormat1(t *testing.T) {
	root := t.TempDir()
	want := writeV1(t, root, 5, map[string][]byte{string(blockKey(5)): []byte("orphan of format 1")})

	// Listing channels reads format 1 without writing.
	p := newTestProvider(t, root)
	if got, err := p.Channels(); err != nil || len(got) != 1 {
		t.Fatalf("Channels = %v, %v", got, err)
	}
	s := mustOpen(t, p, "ch")
	if h := s.Height(); h != 5 {
		t.Fatalf("height %d, want 5", h)
	}
	for i, raw := range allRaw(t, s) {
		if !bytes.Equal(raw, want[i]) {
			t.Fatalf("block %d differs after the upgrade", i)
		}
	}
	if _, err := s.db.Get(v1HeightKey, nil); !errors.Is(err, leveldb.ErrNotFound) {
		t.Fatalf("format 1 height key still there: %v", err)
	}
	if v, err := s.db.Get(formatKey, nil); err != nil || !bytes.Equal(v, []byte{formatVersion}) {
		t.Fatalf("format key = %x, %v", v, err)
	}
	if err := s.Append(blocksFrom(t, 5, 2)...); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, newTestProvider(t, root), "ch")
	if h := s.Height(); h != 7 {
		t.Fatalf("height after reopening %d, want 7", h)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A format-1 store whose height points past its blocks is reported, not upgraded.
func TestUpgradeRefusesCorruptFormat1(t *testing.T) {
	root := t.TempDir()
	writeV1(t, root, 3, map[string][]byte{string(v1HeightKey): encodeUint64(4)})
	_, err := newTestProvider(t, root).Open("ch")
	wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(3), "missing")
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if v, err := db.Get(formatKey, nil); err != nil || !bytes.Equal(v, []byte{1}) {
			t.Fatalf("format 1 key after a refused upgrade = %x, %v", v, err)
		}
	})
}

// The point of format 2: each flushed table covers keys after all older tables, so
// goleveldb's compactions only move tables between levels and never rewrite them (format
// 1's height key made it rewrite level 1 at every level-0 compaction).
func TestAppendsAreNeverRewritten(t *testing.T) {
	s := mustOpen(t, newTestProvider(t, t.TempDir()), "ch")
	// Creating the store wrote its version key's table; only what the blocks cause counts.
	var before leveldb.DBStats
	if err := s.db.Stats(&before); err != nil {
		t.Fatal(err)
	}
	// ~40 MiB of incompressible blocks: ten 4 MiB memtable flushes, enough for level-0
	// compactions.
	for n := range uint64(64) {
		if err := s.Append(testBlock(t, n, 640, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	var st leveldb.DBStats
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.db.Stats(&st); err != nil {
			t.Fatal(err)
		}
		below := 0
		for _, n := range st.LevelTablesCounts[1:] {
			below += n
		}
		if below > 0 && st.LevelTablesCounts[0] < 4 {
			break // level-0 compactions have run
		}
		if time.Now().After(deadline) {
			t.Fatalf("no compaction within 10 s: tables per level %v", st.LevelTablesCounts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for level, w := range st.LevelWrite {
		if level < len(before.LevelWrite) {
			w -= before.LevelWrite[level]
		}
		if level > 0 && w != 0 {
			t.Errorf("compactions into level %d wrote %d bytes; tables per level %v, written %v", level, w, st.LevelTablesCounts, st.LevelWrite)
		}
	}
}
