package configtx

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"

	"github.com/kordhq/kord/orderer/chainverify"
	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/policy"
)

// The conformance vectors recorded from Fabric v2.5.16 live with the chain package.
const vectors = "../chain/testdata/conformance"

type acceptAll struct{}

func (acceptAll) GetPolicy(string) (policy.Policy, bool) { return acceptAll{}, true }

func (acceptAll) EvaluateSignedData([]*policy.SignedData) error { return nil }

func readBlock(t *testing.T, path string) *cb.Block {
	t.Helper()
	b, err := chainverify.ReadBlockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadData returns the header type and data of an envelope's payload.
func payloadData(t *testing.T, raw []byte) (cb.HeaderType, []byte) {
	t.Helper()
	env := &cb.Envelope{}
	if err := proto.Unmarshal(raw, env); err != nil {
		t.Fatal(err)
	}
	p := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, p); err != nil {
		t.Fatal(err)
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(p.Header.ChannelHeader, chdr); err != nil {
		t.Fatal(err)
	}
	return cb.HeaderType(chdr.Type), p.Data
}

func configEnvelope(t *testing.T, envBytes []byte) *cb.ConfigEnvelope {
	t.Helper()
	ht, data := payloadData(t, envBytes)
	if ht != cb.HeaderType_CONFIG {
		t.Fatalf("header type %s, want CONFIG", ht)
	}
	ce := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(data, ce); err != nil {
		t.Fatal(err)
	}
	return ce
}

// TestConformanceChannelCreation rebuilds the config of every channel Fabric created in the
// channel-create scenario from the creation request it received (the LastUpdate of the
// recorded config) and the system channel's config.
func TestConformanceChannelCreation(t *testing.T) {
	dir := filepath.Join(vectors, "channel-create")
	gen := readBlock(t, filepath.Join(dir, "genesis.block"))
	sys, err := channelconfig.FromBlock(gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"mychannel", "channel2", "channel3"} {
		t.Run(ch, func(t *testing.T) {
			b0 := readBlock(t, filepath.Join(dir, "blocks", ch, "0.block"))
			want := configEnvelope(t, b0.Data.Data[0])
			req, err := ParseCreationRequest(want.LastUpdate)
			if err != nil {
				t.Fatal(err)
			}
			if req.ChannelID != ch || req.Consortium == "" {
				t.Fatalf("request = %+v", req)
			}
			tmpl, err := Template(sys.Config, sys.OrdererCapabilities, req)
			if err != nil {
				t.Fatal(err)
			}
			tv, err := channelconfig.FromConfig(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			// The real policies and MSPs: the request's signatures (by Org1's admin, made by
			// Fabric's peer CLI) must satisfy the consortium's ChannelCreationPolicy.
			v, err := NewValidator(ch, tmpl, tv.Policies)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.ProposeConfigUpdate(want.LastUpdate)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("config of %s differs from Fabric's:\n got %v\nwant %v", ch, got.Config, want.Config)
			}
		})
	}
}

// TestConformanceConfigUpdates re-applies the LastUpdate of every config block of the
// config-update scenario to the config before it and compares with what Fabric wrote,
// including block 188, whose update was computed against an older config (re-submission).
func TestConformanceConfigUpdates(t *testing.T) {
	dir := filepath.Join(vectors, "config-update", "blocks", "mychannel")
	prev := configEnvelope(t, readBlock(t, filepath.Join(dir, "0.block")).Data.Data[0]).Config
	for _, n := range []int{23, 34, 186, 188} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			want := configEnvelope(t, readBlock(t, filepath.Join(dir, strconv.Itoa(n)+".block")).Data.Data[0])
			pv, err := channelconfig.FromConfig(prev)
			if err != nil {
				t.Fatal(err)
			}
			// The real mod_policies, checked against the signatures Fabric's clients made.
			v, err := NewValidator("mychannel", prev, pv.Policies)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.ProposeConfigUpdate(want.LastUpdate)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("config of block %d differs from Fabric's", n)
			}
			if err := v.Validate(want); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			prev = want.Config
		})
	}
}
