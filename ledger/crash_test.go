package ledger

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
)

// A writer that put a block without the height (what a crash between two
// separate writes would leave) must not extend the chain, and the slot must
// be reusable.
func TestOrphanBlockKeysIgnored(t *testing.T) {
	root, want := populatedOnDisk(t, 3)
	orphan := mustMarshal(t, testBlock(t, 3, 1, 1))
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		for k, v := range map[string][]byte{
			string(blockKey(3)):  orphan,
			string(blockKey(4)):  []byte("not a block"),
			string(blockKey(99)): nil,
			"b\x00":              []byte("short key with block prefix"),
			"zzz":                []byte("garbage"),
		} {
			if err := db.Put([]byte(k), v, nil); err != nil {
				t.Fatal(err)
			}
		}
	})

	p2 := newTestProvider(t, root)
	s := mustOpen(t, p2, "ch")
	if h := s.Height(); h != 3 {
		t.Fatalf("height = %d, want 3 (orphans must be ignored)", h)
	}
	if _, err := s.Block(3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphan block 3 visible: %v", err)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("Verify with orphans and foreign keys: %v", err)
	}
	fresh := blocksFrom(t, 3, 2)
	if err := s.Append(fresh...); err != nil {
		t.Fatal(err)
	}
	want = append(want, mustMarshal(t, fresh[0]), mustMarshal(t, fresh[1]))
	if got := allRaw(t, s); len(got) != len(want) {
		t.Fatalf("height %d, want %d", len(got), len(want))
	} else {
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("block %d not the appended one", i)
			}
		}
	}
	if got, err := p2.Channels(); err != nil || len(got) != 1 {
		t.Fatalf("Channels = %v, %v", got, err)
	}
}

// An orphan in a store whose height was never written leaves it empty.
func TestOrphanInEmptyStore(t *testing.T) {
	root := t.TempDir()
	p := newTestProvider(t, root)
	mustOpen(t, p, "ch")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if err := db.Put(blockKey(0), mustMarshal(t, testBlock(t, 0, 1, 1)), nil); err != nil {
			t.Fatal(err)
		}
	})
	p2 := newTestProvider(t, root)
	if got, err := p2.Channels(); err != nil || len(got) != 0 {
		t.Fatalf("Channels = %v, %v; want none", got, err)
	}
	s := mustOpen(t, p2, "ch")
	if s.Height() != 0 {
		t.Fatalf("height = %d", s.Height())
	}
	if err := s.Append(blocksFrom(t, 0, 1)...); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptBlockValues(t *testing.T) {
	cases := []struct {
		name  string
		value []byte
	}{
		{"garbage", []byte{0xde, 0xad, 0xbe, 0xef, 0xff, 0xff}},
		{"empty", []byte{}},
		{"wrong block", nil}, // filled in below with block 7's encoding
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, _ := populatedOnDisk(t, 5)
			value := c.value
			if value == nil {
				value = mustMarshal(t, testBlock(t, 7, 1, 1))
			}
			withRawDB(t, root, "ch", func(db *leveldb.DB) {
				if err := db.Put(blockKey(1), value, nil); err != nil {
					t.Fatal(err)
				}
			})

			p2 := newTestProvider(t, root)
			s := mustOpen(t, p2, "ch")
			_, err := s.Block(1)
			wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(1))
			_, err = s.RawBlock(1)
			wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(1))
			wantErr(t, s.Verify(context.Background()), ErrCorrupt, `"ch"`, blockFrag(1))
			it := s.Iterator(0)
			if _, err := it.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, err = it.Next(context.Background())
			wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(1))
			if err := p2.Close(); err != nil {
				t.Fatal(err)
			}

			// The same damage at the tip is caught by Open itself.
			withRawDB(t, root, "ch", func(db *leveldb.DB) {
				if err := db.Put(blockKey(4), value, nil); err != nil {
					t.Fatal(err)
				}
			})
			_, err = newTestProvider(t, root).Open("ch")
			wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(4))
		})
	}
}

// A value that passes the cheap raw check but is not a decodable block must
// still be caught by Block.
func TestUndecodableBlockWithValidHeader(t *testing.T) {
	root, _ := populatedOnDisk(t, 3)
	// Header {number: 1}, then BlockData whose only field claims 5 bytes
	// but has none: well framed at the top level, invalid inside.
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if err := db.Put(blockKey(1), []byte{0x0a, 0x02, 0x08, 0x01, 0x12, 0x02, 0x0a, 0x05}, nil); err != nil {
			t.Fatal(err)
		}
	})
	s := mustOpen(t, newTestProvider(t, root), "ch")
	_, err := s.Block(1)
	wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(1))
}

func TestMissingBlockBelowHeight(t *testing.T) {
	root, _ := populatedOnDisk(t, 5)
	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if err := db.Delete(blockKey(2), nil); err != nil {
			t.Fatal(err)
		}
	})
	p2 := newTestProvider(t, root)
	s := mustOpen(t, p2, "ch")
	_, err := s.Block(2)
	wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(2), "missing")
	wantErr(t, s.Verify(context.Background()), ErrCorrupt, `"ch"`, blockFrag(2))
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}

	withRawDB(t, root, "ch", func(db *leveldb.DB) {
		if err := db.Delete(blockKey(4), nil); err != nil {
			t.Fatal(err)
		}
	})
	_, err = newTestProvider(t, root).Open("ch")
	wantErr(t, err, ErrCorrupt, `"ch"`, blockFrag(4), "missing")
}

func TestBadMarkerAndFormatKeys(t *testing.T) {
	cases := []struct {
		name  string
		key   []byte
		value []byte
		frags []string
	}{
		{"short height", markerKey(4), []byte{1, 2, 3}, []string{"height"}},
		{"marker disagrees with its key", markerKey(4), encodeUint64(7), []string{"height marker after block 4 records height 7"}},
		{"height past blocks", markerKey(9), encodeUint64(10), []string{blockFrag(9), "missing"}},
		{"unknown format", formatKey, []byte{9}, []string{"format"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, _ := populatedOnDisk(t, 5)
			withRawDB(t, root, "ch", func(db *leveldb.DB) {
				if err := db.Put(c.key, c.value, nil); err != nil {
					t.Fatal(err)
				}
			})
			p2 := newTestProvider(t, root)
			_, err := p2.Open("ch")
			wantErr(t, err, ErrCorrupt, append([]string{`"ch"`}, c.frags...)...)
			if c.name == "short height" {
				_, err := p2.Channels()
				wantErr(t, err, ErrCorrupt, `"ch"`)
			}
		})
	}
}

// Cutting goleveldb's journal at arbitrary points models a crash at any
// moment during a sequence of Appends: every reopen must yield a prefix of
// the chain, byte-identical, that can be appended to.
func TestTruncatedJournal(t *testing.T) {
	root, want := populatedOnDisk(t, 40)
	dir := filepath.Join(root, "chains", "ch")
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("journal files = %v, %v", logs, err)
	}
	info, err := os.Stat(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	size := info.Size()

	var lastHeight uint64
	for i := int64(0); i <= 16; i++ {
		cut := size * i / 16
		root2 := t.TempDir()
		dir2 := filepath.Join(root2, "chains", "ch")
		copyDir(t, dir, dir2)
		if err := os.Truncate(filepath.Join(dir2, filepath.Base(logs[0])), cut); err != nil {
			t.Fatal(err)
		}
		p2 := newTestProvider(t, root2)
		s, err := p2.Open("ch")
		if err != nil {
			t.Fatalf("cut at %d/%d: open: %v", cut, size, err)
		}
		h := s.Height()
		if h < lastHeight || h > uint64(len(want)) {
			t.Fatalf("cut at %d: height %d (previous cut %d)", cut, h, lastHeight)
		}
		lastHeight = h
		for n, raw := range allRaw(t, s) {
			if !bytes.Equal(raw, want[n]) {
				t.Fatalf("cut at %d: block %d differs", cut, n)
			}
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if err := s.Append(testBlock(t, h, 1, 1)); err != nil {
			t.Fatalf("cut at %d: append after recovery: %v", cut, err)
		}
		if err := p2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if lastHeight != uint64(len(want)) {
		t.Fatalf("uncut journal recovered height %d, want %d", lastHeight, len(want))
	}
}

// Damage to goleveldb's own files must surface as an error naming the
// channel (and the block, when a read finds it), never as a panic or as a
// silently shorter chain.
func TestCorruptDatabaseFiles(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"table bytes overwritten", func(t *testing.T, dir string) {
			for _, f := range globAll(t, dir, "*.ldb") {
				overwriteMiddle(t, f)
			}
		}},
		{"table truncated", func(t *testing.T, dir string) {
			for _, f := range globAll(t, dir, "*.ldb") {
				truncateHalf(t, f)
			}
		}},
		{"table removed", func(t *testing.T, dir string) {
			for _, f := range globAll(t, dir, "*.ldb") {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"manifest garbage", func(t *testing.T, dir string) {
			for _, f := range globAll(t, dir, "MANIFEST-*") {
				if err := os.WriteFile(f, bytes.Repeat([]byte{0xa5}, 4096), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"manifest truncated", func(t *testing.T, dir string) {
			for _, f := range globAll(t, dir, "MANIFEST-*") {
				if err := os.Truncate(f, 0); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"current removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "CURRENT")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			p := newTestProvider(t, root)
			s := mustOpen(t, p, "ch")
			for i := 0; i < 30; i++ {
				if err := s.Append(testBlock(t, s.Height(), 10, 200)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopening replays the journal into a table file, so the
			// blocks now live in .ldb files rather than only in the log.
			p = newTestProvider(t, root)
			mustOpen(t, p, "ch")
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "chains", "ch")
			c.damage(t, dir)

			p2 := newTestProvider(t, root)
			s2, err := p2.Open("ch")
			if err != nil {
				wantErr(t, err, nil, `"ch"`)
				t.Logf("open: %v", err)
				return
			}
			if s2.Height() != 30 {
				t.Fatalf("damaged store opened with height %d, want an error or 30", s2.Height())
			}
			var readErr error
			for n := uint64(0); n < 30 && readErr == nil; n++ {
				if _, readErr = s2.Block(n); readErr != nil {
					wantErr(t, readErr, nil, `"ch"`, blockFrag(n))
				}
			}
			if readErr == nil {
				t.Fatal("every block of a damaged store was readable")
			}
			t.Logf("read: %v", readErr)
			if err := s2.Verify(context.Background()); err == nil {
				t.Fatal("Verify passed on a damaged store")
			}
		})
	}
}

func globAll(t *testing.T, dir, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s files in %s (%v)", pattern, dir, err)
	}
	return files
}

func overwriteMiddle(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0x5a}, int(info.Size()/3)), info.Size()/3); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), "LOCK") {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
