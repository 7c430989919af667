package chain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/blocks"
)

// benchSigner signs blocks with a P-256 key, as an orderer does.
type benchSigner struct{ k *ecdsa.PrivateKey }

func (s benchSigner) NewSignatureHeader() (*cb.SignatureHeader, error) {
	nonce := make([]byte, 24)
	_, err := rand.Read(nonce)
	return &cb.SignatureHeader{Creator: []byte("orderer"), Nonce: nonce}, err
}

func (s benchSigner) Sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.k, h[:])
}

// BenchmarkMachine is the ordering core's cost per consumed record: 1 KiB envelopes in, blocks
// of 500 out, each block finished (metadata, orderer signature) as the driver does before
// writing it. Kafka, the ledger and the network are not part of it.
func BenchmarkMachine(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer := benchSigner{key}
	m := newTestMachine(b, &ab.KafkaMetadata{LastOffsetPersisted: 9, LastOriginalOffsetProcessed: -1, LastResubmittedConfigOffset: -1}, 1, true)
	m.cfg.BatchSize = ab.BatchSize{MaxMessageCount: 500, PreferredMaxBytes: 2 << 20, AbsoluteMaxBytes: 10 << 20}
	m.cutter.SetLimits(limits(m.cfg))
	rec := regular(b, 1024, 1, ab.KafkaMessageRegular_NORMAL, 0)
	off := m.StartOffset()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		rd := m.Step(off, rec)
		off++
		for _, blk := range rd.Blocks {
			if err := blocks.Finish(blk.Block, blk.LastConfig, blk.Kafka, signer); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
