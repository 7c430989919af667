package blocks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"
)

type keySigner struct{ k *ecdsa.PrivateKey }

func (s keySigner) NewSignatureHeader() (*cb.SignatureHeader, error) {
	return &cb.SignatureHeader{Creator: []byte("creator"), Nonce: []byte("nonce")}, nil
}

func (s keySigner) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.k, d[:])
}

func TestHeaderBytesDER(t *testing.T) {
	// SEQUENCE{INTEGER 1, OCTET STRING "a", OCTET STRING "b"}
	got := HeaderBytes(&cb.BlockHeader{Number: 1, PreviousHash: []byte("a"), DataHash: []byte("b")})
	want, _ := hex.DecodeString("3009020101040161040162")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
	// Numbers with the top bit set stay positive (leading zero byte).
	big := HeaderBytes(&cb.BlockHeader{Number: 128})
	if !bytes.Contains(big, []byte{0x02, 0x02, 0x00, 0x80}) {
		t.Fatalf("128 encoded as %x", big)
	}
}

func TestFinishLayoutAndSignature(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := New(7, []byte("prev"), [][]byte{[]byte("e1"), []byte("e2")})
	if !bytes.Equal(b.Header.DataHash, DataHash([][]byte{[]byte("e1e2")})) {
		t.Fatal("data hash is not over the plain concatenation")
	}
	km := &ab.KafkaMetadata{LastOffsetPersisted: 42, LastOriginalOffsetProcessed: 3}
	if err := Finish(b, 5, km, keySigner{k}); err != nil {
		t.Fatal(err)
	}
	if len(b.Metadata.Metadata) != 5 {
		t.Fatalf("%d metadata slots", len(b.Metadata.Metadata))
	}
	for i := 2; i < 5; i++ {
		if len(b.Metadata.Metadata[i]) != 0 {
			t.Fatalf("slot %d not empty", i)
		}
	}
	got, err := KafkaMetadata(b)
	if err != nil || !proto.Equal(got, km) {
		t.Fatalf("kafka metadata %v %v", got, err)
	}
	if idx, err := LastConfigIndex(b); err != nil || idx != 5 {
		t.Fatalf("last config %d %v", idx, err)
	}
	// What a peer checks: the signature covers value ‖ signature header ‖ header DER.
	md := &cb.Metadata{}
	if err := proto.Unmarshal(b.Metadata.Metadata[cb.BlockMetadataIndex_SIGNATURES], md); err != nil {
		t.Fatal(err)
	}
	if len(md.Signatures) != 1 {
		t.Fatalf("%d signatures", len(md.Signatures))
	}
	msg := append(append(append([]byte{}, md.Value...), md.Signatures[0].SignatureHeader...), HeaderBytes(b.Header)...)
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(&k.PublicKey, d[:], md.Signatures[0].Signature) {
		t.Fatal("block signature does not verify")
	}
}

func TestLastConfigZeroIsEmpty(t *testing.T) {
	b := New(1, nil, nil)
	if err := Finish(b, 0, &ab.KafkaMetadata{}, nil); err != nil {
		t.Fatal(err)
	}
	if len(b.Metadata.Metadata[cb.BlockMetadataIndex_LAST_CONFIG]) != 0 {
		t.Fatalf("LAST_CONFIG for index 0 is %x, Fabric writes zero bytes", b.Metadata.Metadata[1])
	}
}

func TestMetadataOfGenesisIsAbsent(t *testing.T) {
	b := New(0, nil, [][]byte{[]byte("cfg")})
	km, err := KafkaMetadata(b)
	if err != nil || km != nil {
		t.Fatalf("%v %v", km, err)
	}
	bad := New(3, nil, nil)
	bad.Metadata.Metadata[0] = []byte{0xff, 0xff}
	if _, err := KafkaMetadata(bad); err == nil {
		t.Fatal("garbage metadata accepted")
	}
}
