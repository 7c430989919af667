// Package blocks owns the byte layout of the blocks kord writes: header hashing, data hashing,
// the five metadata slots as Fabric v2.5's Kafka orderer fills them, and the orderer's
// signature over the SIGNATURES slot. Peers verify every one of these bytes, so nothing here
// is a matter of taste: it is what Fabric peers accept.
package blocks

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

// metadataSlots is the number of metadata entries every block carries (SIGNATURES,
// LAST_CONFIG, TRANSACTIONS_FILTER, ORDERER, COMMIT_HASH).
const metadataSlots = 5

// asn1Header mirrors the DER structure that block header hashes are computed over. The number
// is encoded as an arbitrary-precision INTEGER so that block numbers above 2^63 stay positive.
type asn1Header struct {
	Number       *big.Int
	PreviousHash []byte
	DataHash     []byte
}

// HeaderBytes is the DER encoding of h that both the header hash and orderer signatures cover.
func HeaderBytes(h *cb.BlockHeader) []byte {
	b, err := asn1.Marshal(asn1Header{
		Number:       new(big.Int).SetUint64(h.GetNumber()),
		PreviousHash: h.GetPreviousHash(),
		DataHash:     h.GetDataHash(),
	})
	if err != nil {
		// asn1.Marshal fails only for types it cannot encode; this struct is always encodable.
		panic(fmt.Sprintf("blocks: encoding header: %v", err))
	}
	return b
}

// HeaderHash is the value the next block stores as PreviousHash.
func HeaderHash(h *cb.BlockHeader) []byte {
	s := sha256.Sum256(HeaderBytes(h))
	return s[:]
}

// DataHash is SHA-256 over the plain concatenation of the data entries.
func DataHash(data [][]byte) []byte {
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// New assembles an unsigned block: header, data, and five empty metadata slots.
func New(number uint64, previousHash []byte, data [][]byte) *cb.Block {
	md := make([][]byte, metadataSlots)
	for i := range md {
		md[i] = []byte{}
	}
	return &cb.Block{
		Header: &cb.BlockHeader{Number: number, PreviousHash: previousHash, DataHash: DataHash(data)},
		Data:   &cb.BlockData{Data: data},
		Metadata: &cb.BlockMetadata{
			Metadata: md,
		},
	}
}

// Signer is the orderer's local signing identity.
type Signer interface {
	// NewSignatureHeader returns a header naming the signer, with a fresh nonce.
	NewSignatureHeader() (*cb.SignatureHeader, error)
	// Sign signs msg (ECDSA over its SHA-256, low-S).
	Sign(msg []byte) ([]byte, error)
}

// Finish fills the metadata of a block cut by the Kafka consenter: LAST_CONFIG, and the
// SIGNATURES slot carrying OrdererBlockMetadata{LastConfig, ConsenterMetadata: KafkaMetadata},
// signed by s over value ‖ signature header ‖ header DER. A nil signer leaves the
// signature list empty (used by replay tests, which compare everything but signatures).
func Finish(b *cb.Block, lastConfig uint64, km *ab.KafkaMetadata, s Signer) error {
	if b.Metadata == nil || len(b.Metadata.Metadata) < metadataSlots {
		return errors.New("blocks: block has no metadata slots")
	}
	lc := mustMarshal(&cb.LastConfig{Index: lastConfig})
	b.Metadata.Metadata[cb.BlockMetadataIndex_LAST_CONFIG] = mustMarshal(&cb.Metadata{Value: lc})

	value := mustMarshal(&cb.OrdererBlockMetadata{
		LastConfig:        &cb.LastConfig{Index: lastConfig},
		ConsenterMetadata: mustMarshal(&cb.Metadata{Value: mustMarshal(km)}),
	})
	md := &cb.Metadata{Value: value}
	if s != nil {
		sh, err := s.NewSignatureHeader()
		if err != nil {
			return fmt.Errorf("blocks: signing block %d: %w", b.Header.Number, err)
		}
		shBytes := mustMarshal(sh)
		msg := make([]byte, 0, len(value)+len(shBytes)+64)
		msg = append(append(append(msg, value...), shBytes...), HeaderBytes(b.Header)...)
		sig, err := s.Sign(msg)
		if err != nil {
			return fmt.Errorf("blocks: signing block %d: %w", b.Header.Number, err)
		}
		md.Signatures = []*cb.MetadataSignature{{SignatureHeader: shBytes, Signature: sig}}
	}
	b.Metadata.Metadata[cb.BlockMetadataIndex_SIGNATURES] = mustMarshal(md)
	return nil
}

// KafkaMetadata reads the consenter metadata of a block written by a Kafka orderer: from the
// SIGNATURES slot (Fabric 2.x), or from the ORDERER slot where Fabric 1.4 kept it. It returns
// nil, nil for a block without any (a genesis block).
func KafkaMetadata(b *cb.Block) (*ab.KafkaMetadata, error) {
	md := b.GetMetadata().GetMetadata()
	if len(md) > int(cb.BlockMetadataIndex_SIGNATURES) && len(md[cb.BlockMetadataIndex_SIGNATURES]) > 0 {
		m := &cb.Metadata{}
		if err := proto.Unmarshal(md[cb.BlockMetadataIndex_SIGNATURES], m); err != nil {
			return nil, fmt.Errorf("block %d: SIGNATURES metadata: %w", b.GetHeader().GetNumber(), err)
		}
		obm := &cb.OrdererBlockMetadata{}
		if err := proto.Unmarshal(m.Value, obm); err != nil {
			return nil, fmt.Errorf("block %d: orderer block metadata: %w", b.GetHeader().GetNumber(), err)
		}
		if len(obm.ConsenterMetadata) > 0 {
			return unmarshalKafka(b, obm.ConsenterMetadata)
		}
	}
	if len(md) > int(cb.BlockMetadataIndex_ORDERER) && len(md[cb.BlockMetadataIndex_ORDERER]) > 0 {
		return unmarshalKafka(b, md[cb.BlockMetadataIndex_ORDERER])
	}
	return nil, nil
}

func unmarshalKafka(b *cb.Block, raw []byte) (*ab.KafkaMetadata, error) {
	m := &cb.Metadata{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("block %d: consenter metadata: %w", b.GetHeader().GetNumber(), err)
	}
	km := &ab.KafkaMetadata{}
	if err := proto.Unmarshal(m.Value, km); err != nil {
		return nil, fmt.Errorf("block %d: Kafka metadata: %w", b.GetHeader().GetNumber(), err)
	}
	return km, nil
}

// LastConfigIndex reads the index of the last config block from a block's metadata: the
// SIGNATURES slot's OrdererBlockMetadata (2.x), else the LAST_CONFIG slot (1.4). Blocks without
// either (genesis) point at block 0.
func LastConfigIndex(b *cb.Block) (uint64, error) {
	md := b.GetMetadata().GetMetadata()
	if len(md) > int(cb.BlockMetadataIndex_SIGNATURES) && len(md[cb.BlockMetadataIndex_SIGNATURES]) > 0 {
		m := &cb.Metadata{}
		obm := &cb.OrdererBlockMetadata{}
		if err := proto.Unmarshal(md[cb.BlockMetadataIndex_SIGNATURES], m); err == nil {
			if err := proto.Unmarshal(m.Value, obm); err == nil && obm.LastConfig != nil {
				return obm.LastConfig.Index, nil
			}
		}
	}
	if len(md) > int(cb.BlockMetadataIndex_LAST_CONFIG) && len(md[cb.BlockMetadataIndex_LAST_CONFIG]) > 0 {
		m := &cb.Metadata{}
		if err := proto.Unmarshal(md[cb.BlockMetadataIndex_LAST_CONFIG], m); err != nil {
			return 0, fmt.Errorf("block %d: LAST_CONFIG metadata: %w", b.GetHeader().GetNumber(), err)
		}
		lc := &cb.LastConfig{}
		if err := proto.Unmarshal(m.Value, lc); err != nil {
			return 0, fmt.Errorf("block %d: LAST_CONFIG value: %w", b.GetHeader().GetNumber(), err)
		}
		return lc.Index, nil
	}
	return 0, nil
}

// mustMarshal marshals messages built by this package from valid Go values; proto.Marshal
// fails only on invalid UTF-8 in string fields, which none of these messages have.
func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("blocks: marshalling %T: %v", m, err))
	}
	return b
}
