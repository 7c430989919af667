package chainverify

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/blocks"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
	"github.com/kordhq/kord/orderer/policy"
)

type fixture struct {
	genesis *cb.Block
	orderer *msp.Signer
	user    *msp.Signer
	// foreign is an orderer of an organization that is not in the channel config.
	foreign *msp.Signer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(dir, spec); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	otherSpec := mspgen.DefaultSpec()
	if err := mspgen.Generate(other, otherSpec); err != nil {
		t.Fatal(err)
	}
	ord := spec.OrdererOrgs[0]
	f := &fixture{}
	var err error
	p := genesis.DevProfile(dir, spec, []string{"127.0.0.1:9092"}, []string{"127.0.0.1:7050"})
	if f.genesis, err = genesis.SystemChannelBlock(p); err != nil {
		t.Fatal(err)
	}
	if f.orderer, err = msp.LoadSigner(mspgen.OrdererMSPDir(mspgen.OrdererOrgDir(dir, ord.Domain), ord.Domain, "orderer0"), ord.MSPID); err != nil {
		t.Fatal(err)
	}
	if f.foreign, err = msp.LoadSigner(mspgen.OrdererMSPDir(mspgen.OrdererOrgDir(other, ord.Domain), ord.Domain, "orderer0"), ord.MSPID); err != nil {
		t.Fatal(err)
	}
	peer := spec.PeerOrgs[0]
	if f.user, err = msp.LoadSigner(mspgen.UserMSPDir(mspgen.PeerOrgDir(dir, peer.Domain), peer.Domain, "User1"), peer.MSPID); err != nil {
		t.Fatal(err)
	}
	return f
}

// chain builds genesis + n blocks of one envelope each, signed by s.
func (f *fixture) chain(t *testing.T, n int, s blocks.Signer) []*cb.Block {
	t.Helper()
	out := []*cb.Block{f.genesis}
	for i := 1; i <= n; i++ {
		env, err := client.Envelope(f.user, cb.HeaderType_ENDORSER_TRANSACTION, "syschannel", []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := proto.Marshal(env)
		prev := out[len(out)-1]
		b := blocks.New(uint64(i), blocks.HeaderHash(prev.Header), [][]byte{raw})
		if err := blocks.Finish(b, 0, &ab.KafkaMetadata{LastOffsetPersisted: int64(i)}, s); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func clone(bs []*cb.Block) []*cb.Block {
	out := make([]*cb.Block, len(bs))
	for i, b := range bs {
		out[i] = proto.Clone(b).(*cb.Block)
	}
	return out
}

func TestVerifyGoodChain(t *testing.T) {
	f := newFixture(t)
	ch := f.chain(t, 5, f.orderer)
	sum, err := Chain(ch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Blocks != 6 || sum.First != 0 || sum.Last != 5 || sum.ConfigBlocks != 1 || sum.Channel != genesis.DefaultSystemChannelID {
		t.Fatalf("summary %+v", sum)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	f := newFixture(t)
	good := f.chain(t, 5, f.orderer)
	cases := []struct {
		name   string
		mangle func([]*cb.Block) []*cb.Block
		block  uint64
		want   string
	}{
		{"data changed", func(c []*cb.Block) []*cb.Block { c[3].Data.Data[0] = append(c[3].Data.Data[0], 1); return c }, 3, "DataHash"},
		{"data hash and data changed", func(c []*cb.Block) []*cb.Block {
			c[3].Data.Data[0] = append(c[3].Data.Data[0], 1)
			c[3].Header.DataHash = blocks.DataHash(c[3].Data.Data)
			return c
		}, 3, "orderer signature"}, // the signature covers the header
		{"header replaced", func(c []*cb.Block) []*cb.Block {
			c[3].Header.DataHash = blocks.DataHash(nil)
			c[3].Data.Data = nil
			_ = blocks.Finish(c[3], 0, &ab.KafkaMetadata{LastOffsetPersisted: 3}, f.orderer)
			return c
		}, 4, "PreviousHash"},
		{"gap", func(c []*cb.Block) []*cb.Block { return append(c[:2], c[3:]...) }, 3, "missing"},
		{"duplicate", func(c []*cb.Block) []*cb.Block { return append(c[:3], c[2:]...) }, 2, "duplicate"},
		{"no signature", func(c []*cb.Block) []*cb.Block {
			_ = blocks.Finish(c[2], 0, &ab.KafkaMetadata{LastOffsetPersisted: 2}, nil)
			return c
		}, 2, "no signature"},
		{"wrong signature", func(c []*cb.Block) []*cb.Block {
			md := &cb.Metadata{}
			_ = proto.Unmarshal(c[4].Metadata.Metadata[0], md)
			md.Value = append(md.Value, 0)
			c[4].Metadata.Metadata[0], _ = proto.Marshal(md)
			return c
		}, 4, "does not verify"},
		{"starts late", func(c []*cb.Block) []*cb.Block { return c[2:] }, 2, "must start at block 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Chain(tc.mangle(clone(good)), Options{})
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a verification error", err)
			}
			if ve.Block != tc.block || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q at block %d, want %q at block %d", err, ve.Block, tc.want, tc.block)
			}
		})
	}
}

func TestVerifySigners(t *testing.T) {
	f := newFixture(t)
	for name, s := range map[string]*msp.Signer{"peer org user": f.user, "orderer of a foreign CA": f.foreign} {
		t.Run(name, func(t *testing.T) {
			_, err := Chain(f.chain(t, 2, s), Options{})
			if err == nil || !strings.Contains(err.Error(), "block 1: orderer signature") {
				t.Fatalf("got %v", err)
			}
		})
	}
	// The seam: a caller's check replaces the default.
	called := 0
	check := func(_ *channelconfig.Values, b *cb.Block, sigs []*policy.SignedData) error {
		called++
		if len(sigs) != 1 || !bytes.Equal(sigs[0].Identity, f.user.Serialize()) {
			t.Errorf("block %d: unexpected signatures", b.Header.Number)
		}
		return nil
	}
	_, err := Chain(f.chain(t, 3, f.user), Options{SignatureCheck: check})
	if err != nil || called != 3 {
		t.Fatalf("custom check: err %v, called %d times", err, called)
	}
}

func TestVerifyFromMiddle(t *testing.T) {
	f := newFixture(t)
	ch := f.chain(t, 5, f.orderer)
	v := New(Options{})
	if err := v.Add(ch[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := Chain(ch[3:], Options{Config: v.Config()}); err != nil {
		t.Fatal(err)
	}
}

func TestCompare(t *testing.T) {
	f := newFixture(t)
	a := f.chain(t, 4, f.orderer)
	b := clone(a)
	// Re-signing changes signatures only: still the same chain.
	for _, blk := range b[1:] {
		km, _ := blocks.KafkaMetadata(blk)
		_ = blocks.Finish(blk, 0, km, f.orderer)
	}
	if n, err := Compare([]Copy{{"a", a}, {"b", b}, {"c", b[:3]}}); err != nil || n != 3 {
		t.Fatalf("same chains: %d, %v", n, err)
	}
	c := clone(a)
	_ = blocks.Finish(c[2], 0, &ab.KafkaMetadata{LastOffsetPersisted: 99}, f.orderer)
	n, err := Compare([]Copy{{"a", a}, {"b", b}, {"c", c}})
	var d *Difference
	if !errors.As(err, &d) || d.Block != 2 || d.B != "c" || n != 2 || !strings.Contains(d.What, "Kafka metadata") {
		t.Fatalf("got %d, %v", n, err)
	}
	c = clone(a)
	c[3].Data.Data[0] = []byte("x")
	if _, err := Compare([]Copy{{"a", a}, {"c", c}}); err == nil || !strings.Contains(err.Error(), "block 3") {
		t.Fatalf("got %v", err)
	}
}

func TestBlockFilesAndStream(t *testing.T) {
	f := newFixture(t)
	ch := f.chain(t, 3, f.orderer)
	dir := t.TempDir()
	var buf bytes.Buffer
	w := NewStreamWriter(&buf)
	for _, b := range ch {
		p, err := WriteBlockFile(dir, "syschannel", b)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) != BlockFileName("syschannel", b.Header.Number) {
			t.Fatalf("file %s", p)
		}
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	id, got, err := ReadBlockDir(dir, "")
	if err != nil || id != "syschannel" || len(got) != 4 {
		t.Fatalf("ReadBlockDir: %s, %d blocks, %v", id, len(got), err)
	}
	r := NewStreamReader(&buf)
	for i := 0; ; i++ {
		b, err := r.Read()
		if err == io.EOF {
			if i != 4 {
				t.Fatalf("stream held %d blocks", i)
			}
			break
		}
		if err != nil || !proto.Equal(b, ch[i]) {
			t.Fatalf("stream block %d: %v", i, err)
		}
	}
}
