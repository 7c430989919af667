package chainverify

import (
	"bytes"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/blocks"
)

// Copy is one orderer's copy of a channel's chain.
type Copy struct {
	Name   string
	Blocks []*cb.Block
}

// Difference is the first block at which two copies differ.
type Difference struct {
	Block uint64
	A, B  string // names of the copies
	What  string
}

func (d *Difference) Error() string {
	return fmt.Sprintf("block %d differs between %s and %s: %s", d.Block, d.A, d.B, d.What)
}

// Compare checks that copies hold the same chain: for every block position they share, the
// same header (number, previous hash, data hash), the same data entries byte for byte, and
// the same consenter metadata and last-config index (signatures differ by nature). It returns
// how many leading blocks all copies share and, as error, the first *Difference. Copies of
// different lengths are not an error (orderers may lag); compare the returned count with the
// lengths to require equal heights.
func Compare(copies []Copy) (int, error) {
	if len(copies) < 2 {
		return 0, fmt.Errorf("comparing chains needs at least two copies, have %d", len(copies))
	}
	common := len(copies[0].Blocks)
	for _, c := range copies[1:] {
		common = min(common, len(c.Blocks))
	}
	ref := copies[0]
	for i := range common {
		r := ref.Blocks[i]
		for _, c := range copies[1:] {
			if what := blockDiff(r, c.Blocks[i]); what != "" {
				n := r.GetHeader().GetNumber()
				if r.GetHeader() == nil {
					n = uint64(i)
				}
				return i, &Difference{Block: n, A: ref.Name, B: c.Name, What: what}
			}
		}
	}
	return common, nil
}

// blockDiff says how two blocks differ, or "" when they are the same block.
func blockDiff(a, b *cb.Block) string {
	ha, hb := a.GetHeader(), b.GetHeader()
	switch {
	case ha == nil || hb == nil:
		if ha != hb {
			return "one has no header"
		}
	case ha.Number != hb.Number:
		return fmt.Sprintf("number %d vs %d", ha.Number, hb.Number)
	case !bytes.Equal(ha.PreviousHash, hb.PreviousHash):
		return fmt.Sprintf("PreviousHash %x vs %x", ha.PreviousHash, hb.PreviousHash)
	case !bytes.Equal(ha.DataHash, hb.DataHash):
		return fmt.Sprintf("DataHash %x vs %x", ha.DataHash, hb.DataHash)
	}
	da, db := a.GetData().GetData(), b.GetData().GetData()
	if len(da) != len(db) {
		return fmt.Sprintf("%d data entries vs %d", len(da), len(db))
	}
	for k := range da {
		if !bytes.Equal(da[k], db[k]) {
			return fmt.Sprintf("data entry %d differs (%d vs %d bytes)", k, len(da[k]), len(db[k]))
		}
	}
	ka, errA := blocks.KafkaMetadata(a)
	kb, errB := blocks.KafkaMetadata(b)
	switch {
	case errA != nil || errB != nil:
		return fmt.Sprintf("consenter metadata unreadable: %v / %v", errA, errB)
	case !proto.Equal(ka, kb):
		return fmt.Sprintf("Kafka metadata %v vs %v", ka, kb)
	}
	la, errA := blocks.LastConfigIndex(a)
	lb, errB := blocks.LastConfigIndex(b)
	switch {
	case errA != nil || errB != nil:
		return fmt.Sprintf("last-config index unreadable: %v / %v", errA, errB)
	case la != lb:
		return fmt.Sprintf("last-config index %d vs %d", la, lb)
	}
	return ""
}
