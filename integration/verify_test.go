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
	"github.com/kordhq/kord/orderer/chainverify"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/policy"
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

// verifyChains checks that the chains the orderers delivered for one channel are one chain
// (orderer/chainverify, the checks `kordctl verify` runs): every chain numbered without gap,
// hash-linked, with matching data hashes and every block but the genesis block signed by an
// orderer organization - here, by the orderer that served it; and all chains of the same
// length with the same headers, byte-identical data, the same Kafka metadata and last-config
// index.
func (nw *network) verifyChains(channelID string, chains [][]*cb.Block) {
	t := nw.t
	t.Helper()
	copies := make([]chainverify.Copy, len(chains))
	for i, ch := range chains {
		o := nw.orderers[i]
		copies[i] = chainverify.Copy{Name: o.name, Blocks: ch}
		if len(ch) != len(chains[0]) {
			t.Errorf("%s: %s has %d blocks, %s has %d", channelID, o.name, len(ch), nw.orderers[0].name, len(chains[0]))
		}
		check := func(cfg *channelconfig.Values, b *cb.Block, sigs []*policy.SignedData) error {
			if err := chainverify.BlockValidation(cfg, b, sigs); err != nil {
				return err
			}
			if len(sigs) != 1 || !bytes.Equal(sigs[0].Identity, o.id) {
				return fmt.Errorf("%d signatures, want exactly one, by %s", len(sigs), o.name)
			}
			return nil
		}
		sum, err := chainverify.Chain(ch, chainverify.Options{SignatureCheck: check})
		if err != nil {
			t.Errorf("%s: %v", o.name, err)
			continue
		}
		if sum.Channel != channelID {
			t.Errorf("%s: chain of channel %q delivered for %q", o.name, sum.Channel, channelID)
		}
		for _, b := range ch[1:] {
			if km, err := blocks.KafkaMetadata(b); err != nil || km == nil {
				t.Errorf("%s %s: block %d has no Kafka metadata (%v)", o.name, channelID, b.Header.Number, err)
				break
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if len(copies) < 2 {
		return
	}
	if _, err := chainverify.Compare(copies); err != nil {
		t.Fatalf("%s: %v", channelID, err)
	}
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
