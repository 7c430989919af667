package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
)

// maxChannelIDLen matches Fabric's channel name limit; it also keeps the
// directory name well within filesystem limits.
const maxChannelIDLen = 249

// Provider owns the ledger root directory: one goleveldb database per
// channel under <root>/chains/<channelID>/. It hands out at most one Store
// per channel, because goleveldb locks its directory exclusively.
type Provider struct {
	chainsDir string

	mu     sync.Mutex
	stores map[string]*Store // guarded by mu
	closed bool              // guarded by mu
}

// NewProvider creates <root>/chains if needed and returns a provider for it.
func NewProvider(root string) (*Provider, error) {
	if root == "" {
		return nil, errors.New("ledger: empty root directory")
	}
	dir := filepath.Join(root, "chains")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("ledger: create %s: %w", dir, err)
	}
	return &Provider{chainsDir: dir, stores: make(map[string]*Store)}, nil
}

// validChannelID rejects only what would be unsafe or ambiguous as a single
// directory name; the stricter Fabric naming rules are enforced where
// channels are created, not by storage.
func validChannelID(id string) error {
	switch {
	case id == "":
		return errors.New("ledger: empty channel ID")
	case len(id) > maxChannelIDLen:
		return fmt.Errorf("ledger: channel ID of %d bytes exceeds %d", len(id), maxChannelIDLen)
	case id == "." || id == "..":
		return fmt.Errorf("ledger: invalid channel ID %q", id)
	case strings.ContainsAny(id, "/\\\x00"):
		return fmt.Errorf("ledger: channel ID %q contains a path separator or NUL", id)
	}
	return nil
}

// Open creates or reopens the store of channelID. While a store is open,
// Open returns that same *Store; once it is closed, Open reopens it from disk.
func (p *Provider) Open(channelID string) (*Store, error) {
	if err := validChannelID(channelID); err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("ledger: open channel %q: %w", channelID, ErrClosed)
		}
		s, ok := p.stores[channelID]
		if !ok {
			ns, err := openStore(channelID, filepath.Join(p.chainsDir, channelID), p.forget)
			if err == nil {
				p.stores[channelID] = ns
			}
			p.mu.Unlock()
			return ns, err
		}
		select {
		case <-s.done:
			// A Close of this store is under way and still holds goleveldb's
			// directory lock. Wait for it outside p.mu (its completion calls
			// forget, which needs p.mu), then reopen from disk.
			p.mu.Unlock()
			_ = s.Close()
		default:
			p.mu.Unlock()
			return s, nil
		}
	}
}

// forget is the Store.Close callback. It must not be called with p.mu held,
// which Provider.Close guarantees by closing stores after releasing it.
func (p *Provider) forget(s *Store) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stores[s.channelID] == s {
		delete(p.stores, s.channelID)
	}
}

// Channels returns, sorted, the IDs of channels whose store on disk has a
// height above zero. Stores that are not open are opened read-only just long
// enough to read their height; an unreadable store is an error rather than
// being skipped, because silently dropping a channel at startup would hide
// corruption.
func (p *Provider) Channels() ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("ledger: list channels: %w", ErrClosed)
	}
	entries, err := os.ReadDir(p.chainsDir)
	if err != nil {
		return nil, fmt.Errorf("ledger: list channels in %s: %w", p.chainsDir, err)
	}
	var ids []string
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || validChannelID(id) != nil {
			continue
		}
		if s, ok := p.stores[id]; ok {
			if s.Height() > 0 {
				ids = append(ids, id)
			}
			continue
		}
		h, err := peekHeight(filepath.Join(p.chainsDir, id))
		if err != nil {
			return nil, fmt.Errorf("ledger: channel %q: read height: %w", id, err)
		}
		if h > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// peekHeight reads the height of a database that is not open, without
// writing to it (read-only mode replays the journal in memory only).
func peekHeight(dir string) (uint64, error) {
	o := dbOptions()
	o.ReadOnly = true
	o.ErrorIfMissing = true
	db, err := leveldb.OpenFile(dir, o)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, dbErr(err)
	}
	h, _, err := readHeight(db)
	if cerr := db.Close(); cerr != nil && err == nil {
		err = dbErr(cerr)
	}
	return h, err
}

// Close closes every open store and makes the provider unusable.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	stores := make([]*Store, 0, len(p.stores))
	for _, s := range p.stores {
		stores = append(stores, s)
	}
	p.mu.Unlock()

	var errs []error
	for _, s := range stores {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
