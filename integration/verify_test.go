package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
)

// errorBudget stops a verification after this many mismatches: one real divergence tends to
// make every later block differ too.
const errorBudget = 10

type checker struct {
	t    *testing.T
	errs int
}

func (c *checker) errorf(format string, args ...any) {
	c.t.Helper()
	c.errs++
	c.t.Errorf(format, args...)
	if c.errs >= errorBudget {
		c.t.FailNow()
	}
}

// collectChains reads channelID from every orderer until each delivered every tx of want
// (see deliverUntil).
func (nw *network) collectChains(channelID string, want map[string]string, timeout time.Duration) [][]*cb.Block {
	t := nw.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	chains := make([][]*cb.Block, len(nw.orderers))
	for i, o := range nw.orderers {
		conn := o.dial()
		blks, err := deliverUntil(ctx, conn, nw.user, channelID, want)
		conn.Close()
		if err != nil {
			missing := 0
			seen := map[string]bool{}
			for _, b := range blks {
				for _, tx := range blockTxs(b) {
					seen[tx.id] = true
				}
			}
			for id := range want {
				if !seen[id] {
					missing++
				}
			}
			t.Fatalf("%s: delivering %s: %v (%d acknowledged transactions missing)", o.name, channelID, err, missing)
		}
		chains[i] = blks
	}
	return chains
}

// collectAll reads blocks 0..newest of channelID from every orderer.
func (nw *network) collectAll(channelID string) [][]*cb.Block {
	t := nw.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chains := make([][]*cb.Block, len(nw.orderers))
	// Application users may not read the system channel (its Readers are the orderer
	// organization's), so the orderer organization's admin reads it.
	var reader client.Signer = nw.user
	if channelID == genesis.DefaultSystemChannelID {
		reader = nw.ordererAdmin()
	}
	for i, o := range nw.orderers {
		conn := o.dial()
		st, blks, err := deliverRange(ctx, conn, reader, channelID, client.Oldest(), client.Newest(), ab.SeekInfo_BLOCK_UNTIL_READY)
		conn.Close()
		if err != nil || st != cb.Status_SUCCESS {
			t.Fatalf("%s: delivering %s: status %v, err %v", o.name, channelID, st, err)
		}
		chains[i] = blks
	}
	return chains
}

// verifyChains checks that the chains the orderers delivered for one channel are one chain:
// the same length; per block the same header (Number, PreviousHash, DataHash), byte-identical
// data, the same Kafka metadata and last-config index; every chain hash-linked and numbered
// without gap; and every block but the genesis block signed by the orderer that served it.
func (nw *network) verifyChains(channelID string, chains [][]*cb.Block) {
	t := nw.t
	t.Helper()
	c := &checker{t: t}
	for i, ch := range chains {
		if len(ch) != len(chains[0]) {
			c.errorf("%s: %s has %d blocks, %s has %d", channelID, nw.orderers[i].name, len(ch), nw.orderers[0].name, len(chains[0]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	verifier := msp.NewSignatureVerifier(0)
	for i, ch := range chains {
		name := nw.orderers[i].name
		for n, b := range ch {
			if b.GetHeader() == nil || b.GetData() == nil {
				c.errorf("%s %s: block at position %d has no header or data", name, channelID, n)
				continue
			}
			h := b.Header
			if h.Number != uint64(n) {
				c.errorf("%s %s: block at position %d has number %d (gap or duplicate)", name, channelID, n, h.Number)
			}
			if !bytes.Equal(h.DataHash, blocks.DataHash(b.Data.Data)) {
				c.errorf("%s %s: block %d: DataHash does not match its data", name, channelID, h.Number)
			}
			if n == 0 {
				if len(h.PreviousHash) != 0 {
					c.errorf("%s %s: block 0 has a PreviousHash", name, channelID)
				}
			} else if want := blocks.HeaderHash(ch[n-1].Header); !bytes.Equal(h.PreviousHash, want) {
				c.errorf("%s %s: block %d: PreviousHash %x, header hash of block %d is %x", name, channelID, h.Number, h.PreviousHash, n-1, want)
			}
			if n > 0 {
				if err := verifyBlockSignature(verifier, b, nw.orderers[i].id); err != nil {
					c.errorf("%s %s: block %d: %v", name, channelID, h.Number, err)
				}
			}
		}
	}
	ref := chains[0]
	for i := 1; i < len(chains); i++ {
		name := nw.orderers[i].name
		for n, b := range chains[i] {
			r := ref[n]
			if !proto.Equal(b.Header, r.Header) {
				c.errorf("%s: block %d: header of %s %v differs from %s's %v", channelID, n, name, b.Header, nw.orderers[0].name, r.Header)
			}
			if len(b.Data.Data) != len(r.Data.Data) {
				c.errorf("%s: block %d: %s has %d envelopes, %s has %d", channelID, n, name, len(b.Data.Data), nw.orderers[0].name, len(r.Data.Data))
				continue
			}
			for k := range b.Data.Data {
				if !bytes.Equal(b.Data.Data[k], r.Data.Data[k]) {
					c.errorf("%s: block %d: envelope %d differs between %s and %s", channelID, n, k, name, nw.orderers[0].name)
				}
			}
			km, err1 := blocks.KafkaMetadata(b)
			rkm, err2 := blocks.KafkaMetadata(r)
			if err1 != nil || err2 != nil {
				c.errorf("%s: block %d: reading Kafka metadata: %v / %v", channelID, n, err1, err2)
			} else if !proto.Equal(km, rkm) {
				c.errorf("%s: block %d: Kafka metadata of %s %v differs from %s's %v", channelID, n, name, km, nw.orderers[0].name, rkm)
			}
			if n > 0 && km == nil {
				c.errorf("%s: block %d of %s has no Kafka metadata", channelID, n, name)
			}
			lc, err1 := blocks.LastConfigIndex(b)
			rlc, err2 := blocks.LastConfigIndex(r)
			if err1 != nil || err2 != nil || lc != rlc {
				c.errorf("%s: block %d: last config %d (%v) at %s, %d (%v) at %s", channelID, n, lc, err1, name, rlc, err2, nw.orderers[0].name)
			}
		}
	}
}

// verifyBlockSignature checks that the SIGNATURES metadata holds exactly one signature, by
// id, over value ‖ signature header ‖ header.
func verifyBlockSignature(v *msp.SignatureVerifier, b *cb.Block, id []byte) error {
	md := b.GetMetadata().GetMetadata()
	if len(md) <= int(cb.BlockMetadataIndex_SIGNATURES) {
		return fmt.Errorf("no SIGNATURES metadata")
	}
	m := &cb.Metadata{}
	if err := proto.Unmarshal(md[cb.BlockMetadataIndex_SIGNATURES], m); err != nil {
		return fmt.Errorf("SIGNATURES metadata: %w", err)
	}
	if len(m.Signatures) != 1 {
		return fmt.Errorf("%d block signatures, want 1", len(m.Signatures))
	}
	sig := m.Signatures[0]
	sh := &cb.SignatureHeader{}
	if err := proto.Unmarshal(sig.SignatureHeader, sh); err != nil {
		return fmt.Errorf("block signature header: %w", err)
	}
	if !bytes.Equal(sh.Creator, id) {
		return fmt.Errorf("block is signed by another identity than the orderer that served it")
	}
	msg := append(append(append([]byte{}, m.Value...), sig.SignatureHeader...), blocks.HeaderBytes(b.Header)...)
	if err := v.Verify(sh.Creator, msg, sig.Signature); err != nil {
		return fmt.Errorf("block signature: %w", err)
	}
	return nil
}

// verifyTxs checks the transactions of an application channel chain: no tx ID twice in the
// chain, every acknowledged tx present, and Fabric's batching rules (at most MaxMessageCount
// envelopes per block, an envelope above PreferredMaxBytes alone in its block, several
// envelopes together within PreferredMaxBytes). It returns how many endorser transactions the
// chain holds and how many blocks held an oversized envelope.
func verifyTxs(t *testing.T, chain []*cb.Block, acked map[string]string) (txs, oversized int) {
	t.Helper()
	c := &checker{t: t}
	where := map[string]uint64{}
	for _, b := range chain {
		n := b.Header.Number
		list := blockTxs(b)
		if n == 0 {
			if len(list) != 1 || list[0].headerType != cb.HeaderType_CONFIG {
				c.errorf("block 0 is not a single CONFIG envelope")
			}
			continue
		}
		if len(list) == 0 {
			c.errorf("block %d is empty", n)
		}
		if len(list) > maxMessageCount {
			c.errorf("block %d holds %d envelopes, MaxMessageCount is %d", n, len(list), maxMessageCount)
		}
		total := 0
		for _, tx := range list {
			if tx.headerType != cb.HeaderType_ENDORSER_TRANSACTION || tx.id == "" {
				c.errorf("block %d holds an envelope of type %v (tx ID %q)", n, tx.headerType, tx.id)
				continue
			}
			if prev, dup := where[tx.id]; dup {
				c.errorf("tx %s is in block %d and again in block %d", tx.id, prev, n)
			}
			where[tx.id] = n
			total += tx.size
			if tx.size > preferredMaxBytes {
				oversized++
				if len(list) != 1 {
					c.errorf("block %d holds an envelope of %d bytes (above PreferredMaxBytes) with %d others", n, tx.size, len(list)-1)
				}
			}
		}
		if len(list) > 1 && total > preferredMaxBytes {
			c.errorf("block %d holds %d envelopes of %d bytes in all, above PreferredMaxBytes", n, len(list), total)
		}
	}
	missing := 0
	for id, by := range acked {
		if _, ok := where[id]; !ok {
			missing++
			if missing <= 5 {
				t.Errorf("tx %s acknowledged by %s is not in the chain", id, by)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged transactions are missing from the chain", missing, len(acked))
	}
	return len(where), oversized
}

// blockEqual reports whether two blocks are identical, metadata included.
func blockEqual(a, b *cb.Block) bool { return proto.Equal(a, b) }
