// Package chainverify checks chains of blocks written by an ordering service, the way a peer
// (and an auditor) would, without trusting the orderer that served them:
//
//   - numbering: each block is the previous one's number + 1, with no gap and no duplicate;
//   - hash links: PreviousHash is the header hash (DER) of the previous block;
//   - data hashes: DataHash is SHA-256 over the block's data entries;
//   - orderer signatures: the SIGNATURES metadata is signed over value ‖ signature header ‖
//     header by identities that satisfy the channel's BlockValidation policy (see SignatureCheck);
//   - the channel config in force is followed through config blocks, so that signatures after
//     a config change are checked against the new config.
//
// Compare checks that several orderers' copies of one channel are the same chain: headers and
// data byte for byte, and the consenter (Kafka) metadata and last-config index of every block;
// it reports the first block where they differ.
//
// The package is used by `kordctl verify` and by the integration and fault suites.
package chainverify

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/policy"
)

// SignatureCheck decides whether the signatures of block b satisfy the channel's block
// validation rule, given the channel config in force before b. Each element of sigs is one
// signature of the SIGNATURES metadata slot as policy.SignedData: the signed bytes
// (value ‖ signature header ‖ header DER), the creator from the signature header, and the
// signature.
//
// The default, BlockValidation, evaluates the channel's /Channel/Orderer/BlockValidation
// policy; callers may add their own rules (e.g. "signed by this orderer") in its place.
type SignatureCheck func(cfg *channelconfig.Values, b *cb.Block, sigs []*policy.SignedData) error

// Options tune a Verifier.
type Options struct {
	// SignatureCheck replaces BlockValidation; NoSignatureCheck skips the check.
	SignatureCheck SignatureCheck
	// Config is the channel config in force before the first block given, for a chain that
	// does not start at block 0 (nil: the first block must be block 0, a config block).
	Config *channelconfig.Values
}

// NoSignatureCheck accepts any signatures (hash links and data hashes are still checked).
func NoSignatureCheck(*channelconfig.Values, *cb.Block, []*policy.SignedData) error { return nil }

// Error is a verification failure at one block.
type Error struct {
	Channel string
	Block   uint64
	Reason  string
}

func (e *Error) Error() string {
	if e.Channel != "" {
		return fmt.Sprintf("channel %s: block %d: %s", e.Channel, e.Block, e.Reason)
	}
	return fmt.Sprintf("block %d: %s", e.Block, e.Reason)
}

// Verifier checks a chain block by block, in order. It holds only the previous header and
// the config in force, so a chain of any length can be checked as it streams in.
type Verifier struct {
	o       Options
	check   SignatureCheck
	channel string
	cfg     *channelconfig.Values
	prev    *cb.BlockHeader
	count   int
	configs int
}

// New returns a verifier for one channel's chain.
func New(o Options) *Verifier {
	v := &Verifier{o: o, check: o.SignatureCheck, cfg: o.Config}
	if v.check == nil {
		v.check = BlockValidation
	}
	if o.Config != nil {
		v.channel = o.Config.ChannelID
	}
	return v
}

// Summary tells what a verifier has seen.
type Summary struct {
	Channel      string
	Blocks       int
	First, Last  uint64
	ConfigBlocks int
}

// Summary reports the blocks checked so far.
func (v *Verifier) Summary() Summary {
	s := Summary{Channel: v.channel, Blocks: v.count, ConfigBlocks: v.configs}
	if v.prev != nil {
		s.Last = v.prev.Number
		s.First = v.prev.Number + 1 - uint64(v.count)
	}
	return s
}

func (v *Verifier) fail(n uint64, format string, args ...any) error {
	return &Error{Channel: v.channel, Block: n, Reason: fmt.Sprintf(format, args...)}
}

// Add checks the next block of the chain.
func (v *Verifier) Add(b *cb.Block) error {
	if b.GetHeader() == nil {
		return v.fail(uint64(v.count), "block has no header")
	}
	if b.GetData() == nil {
		return v.fail(b.Header.Number, "block has no data")
	}
	h := b.Header
	n := h.Number
	if v.prev == nil {
		if v.cfg == nil {
			if n != 0 {
				return v.fail(n, "the chain starts at block %d; without the channel config in force (Options.Config) it must start at block 0", n)
			}
		}
	} else if n != v.prev.Number+1 {
		if n <= v.prev.Number {
			return v.fail(n, "follows block %d (duplicate or out of order)", v.prev.Number)
		}
		return v.fail(n, "follows block %d (blocks %d..%d missing)", v.prev.Number, v.prev.Number+1, n-1)
	}
	if want := blocks.DataHash(b.Data.Data); !bytes.Equal(h.DataHash, want) {
		return v.fail(n, "DataHash %x does not match its data (SHA-256 of the data is %x)", h.DataHash, want)
	}
	switch {
	case n == 0:
		if len(h.PreviousHash) != 0 {
			return v.fail(n, "genesis block has a PreviousHash")
		}
	case v.prev != nil:
		if want := blocks.HeaderHash(v.prev); !bytes.Equal(h.PreviousHash, want) {
			return v.fail(n, "PreviousHash %x is not the header hash of block %d (%x)", h.PreviousHash, v.prev.Number, want)
		}
	}

	newCfg, isConfig, err := configOf(b)
	if err != nil {
		return v.fail(n, "%v", err)
	}
	if n == 0 {
		if !isConfig {
			return v.fail(n, "genesis block does not carry a CONFIG envelope")
		}
	} else {
		if v.cfg == nil {
			return v.fail(n, "no channel config in force")
		}
		sigs, err := Signatures(b)
		if err != nil {
			return v.fail(n, "%v", err)
		}
		if err := v.check(v.cfg, b, sigs); err != nil {
			return v.fail(n, "orderer signature: %v", err)
		}
		if lc, err := blocks.LastConfigIndex(b); err != nil {
			return v.fail(n, "%v", err)
		} else if isConfig && lc != n {
			return v.fail(n, "config block's last-config index is %d, not its own number", lc)
		}
	}
	if isConfig {
		if v.channel != "" && newCfg.ChannelID != v.channel {
			return v.fail(n, "config block of channel %q in the chain of channel %q", newCfg.ChannelID, v.channel)
		}
		v.cfg = newCfg
		v.channel = newCfg.ChannelID
		v.configs++
	}
	v.prev = h
	v.count++
	return nil
}

// Config is the channel config in force after the blocks added so far.
func (v *Verifier) Config() *channelconfig.Values { return v.cfg }

// Chain verifies a whole chain held in memory.
func Chain(chain []*cb.Block, o Options) (Summary, error) {
	v := New(o)
	for _, b := range chain {
		if err := v.Add(b); err != nil {
			return v.Summary(), err
		}
	}
	return v.Summary(), nil
}

// configOf reads the config of a block that carries a single CONFIG envelope. isConfig is
// false for any other block (an ORDERER_TRANSACTION on the system channel is not a config
// change of that channel).
func configOf(b *cb.Block) (*channelconfig.Values, bool, error) {
	if len(b.Data.Data) != 1 {
		return nil, false, nil
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(b.Data.Data[0], env); err != nil {
		return nil, false, nil
	}
	p := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, p); err != nil || p.Header == nil {
		return nil, false, nil
	}
	ch := &cb.ChannelHeader{}
	if err := proto.Unmarshal(p.Header.ChannelHeader, ch); err != nil || cb.HeaderType(ch.Type) != cb.HeaderType_CONFIG {
		return nil, false, nil
	}
	cfg, err := channelconfig.FromEnvelope(env)
	if err != nil {
		return nil, true, fmt.Errorf("config block: %w", err)
	}
	return cfg, true, nil
}

// Signatures extracts the orderer signatures of a block's SIGNATURES metadata, each with the
// bytes it signs.
func Signatures(b *cb.Block) ([]*policy.SignedData, error) {
	md := b.GetMetadata().GetMetadata()
	if len(md) <= int(cb.BlockMetadataIndex_SIGNATURES) || len(md[cb.BlockMetadataIndex_SIGNATURES]) == 0 {
		return nil, errors.New("no SIGNATURES metadata")
	}
	m := &cb.Metadata{}
	if err := proto.Unmarshal(md[cb.BlockMetadataIndex_SIGNATURES], m); err != nil {
		return nil, fmt.Errorf("SIGNATURES metadata: %w", err)
	}
	hdr := blocks.HeaderBytes(b.Header)
	out := make([]*policy.SignedData, 0, len(m.Signatures))
	for i, s := range m.Signatures {
		sh := &cb.SignatureHeader{}
		if err := proto.Unmarshal(s.SignatureHeader, sh); err != nil {
			return nil, fmt.Errorf("signature %d: signature header: %w", i, err)
		}
		data := make([]byte, 0, len(m.Value)+len(s.SignatureHeader)+len(hdr))
		data = append(append(append(data, m.Value...), s.SignatureHeader...), hdr...)
		out = append(out, &policy.SignedData{Data: data, Identity: sh.Creator, Signature: s.Signature})
	}
	return out, nil
}
