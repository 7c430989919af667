package genesis

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/orderer/msp/mspgen"
)

const conformanceDir = "/work/shared/conformance/basic-cutting"

// testProfile mirrors the conformance vectors' ConfGenesis profile on a
// freshly generated tree.
func testProfile(t *testing.T) Profile {
	t.Helper()
	root := t.TempDir()
	if err := mspgen.Generate(root, mspgen.DefaultSpec()); err != nil {
		t.Fatal(err)
	}
	p := DevProfile(root, mspgen.DefaultSpec(),
		[]string{"127.0.0.1:29092", "127.0.0.1:29093", "127.0.0.1:29094"},
		[]string{"127.0.0.1:27050"})
	p.BatchTimeout = 500 * time.Millisecond
	p.MaxMessageCount = 10
	p.AbsoluteMaxBytes = 1048576
	p.PreferredMaxBytes = 65536
	return p
}

func channelHeaderOf(t *testing.T, env *cb.Envelope) (*cb.ChannelHeader, *cb.Payload) {
	t.Helper()
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		t.Fatal(err)
	}
	chdr := &cb.ChannelHeader{}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, chdr); err != nil {
		t.Fatal(err)
	}
	return chdr, payload
}

func value(t *testing.T, g *cb.ConfigGroup, key string, msg proto.Message) {
	t.Helper()
	v, ok := g.Values[key]
	if !ok {
		t.Fatalf("value %s missing (have %v)", key, sortedKeys(g.Values))
	}
	if err := proto.Unmarshal(v.Value, msg); err != nil {
		t.Fatalf("value %s: %v", key, err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ordererSummary is what a Kafka orderer reads from the Orderer group.
type ordererSummary struct {
	consensusType string
	brokers       []string
	batchSize     *ab.BatchSize
	batchTimeout  string
}

func readOrderer(t *testing.T, cfg *cb.Config) ordererSummary {
	t.Helper()
	og, ok := cfg.ChannelGroup.Groups["Orderer"]
	if !ok {
		t.Fatal("no Orderer group")
	}
	var s ordererSummary
	ct := &ab.ConsensusType{}
	value(t, og, "ConsensusType", ct)
	s.consensusType = ct.Type
	kb := &ab.KafkaBrokers{}
	value(t, og, "KafkaBrokers", kb)
	s.brokers = kb.Brokers
	s.batchSize = &ab.BatchSize{}
	value(t, og, "BatchSize", s.batchSize)
	bt := &ab.BatchTimeout{}
	value(t, og, "BatchTimeout", bt)
	s.batchTimeout = bt.Timeout
	return s
}

func readBlockFile(t *testing.T, path string) *cb.Block {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("conformance vectors not available: %v", err)
	}
	b := &cb.Block{}
	if err := proto.Unmarshal(raw, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSystemChannelBlock(t *testing.T) {
	p := testProfile(t)
	block, err := SystemChannelBlock(p)
	if err != nil {
		t.Fatal(err)
	}
	if block.Header.Number != 0 || len(block.Data.Data) != 1 {
		t.Fatalf("block header %v, %d data entries", block.Header, len(block.Data.Data))
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(block.Data.Data[0], env); err != nil {
		t.Fatal(err)
	}
	chdr, _ := channelHeaderOf(t, env)
	if chdr.Type != int32(cb.HeaderType_CONFIG) || chdr.ChannelId != DefaultSystemChannelID {
		t.Fatalf("channel header %v", chdr)
	}
	cfg, err := ConfigFromBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	got := readOrderer(t, cfg)
	if got.consensusType != "kafka" || !slices.Equal(got.brokers, p.Brokers) || got.batchTimeout != "500ms" ||
		got.batchSize.MaxMessageCount != 10 || got.batchSize.AbsoluteMaxBytes != 1048576 || got.batchSize.PreferredMaxBytes != 65536 {
		t.Fatalf("orderer section %+v", got)
	}

	og := cfg.ChannelGroup.Groups["Orderer"].Groups["OrdererOrg"]
	if og == nil {
		t.Fatal("no OrdererOrg group")
	}
	ep := &cb.OrdererAddresses{}
	value(t, og, "Endpoints", ep)
	if !slices.Equal(ep.Addresses, []string{"127.0.0.1:27050"}) {
		t.Fatalf("endpoints %v", ep.Addresses)
	}
	mc := &mspproto.MSPConfig{}
	value(t, og, "MSP", mc)
	fm := &mspproto.FabricMSPConfig{}
	if err := proto.Unmarshal(mc.Config, fm); err != nil {
		t.Fatal(err)
	}
	if fm.Name != "OrdererMSP" || len(fm.RootCerts) != 1 || len(fm.TlsRootCerts) != 1 || fm.FabricNodeOus == nil ||
		!fm.FabricNodeOus.Enable || fm.FabricNodeOus.AdminOuIdentifier.OrganizationalUnitIdentifier != "admin" {
		t.Fatalf("orderer MSP config %+v", fm)
	}
	caPEM, err := os.ReadFile(filepath.Join(p.OrdererOrgs[0].MSPDir, "cacerts", "ca.example.com-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fm.RootCerts[0], caPEM) || !bytes.Equal(fm.FabricNodeOus.ClientOuIdentifier.Certificate, caPEM) {
		t.Fatal("MSP root certificate differs from the tree's CA")
	}

	cons := cfg.ChannelGroup.Groups["Consortiums"].Groups[DefaultConsortium]
	if cons == nil || sortedKeys(cons.Groups)[0] != "Org1" || len(cons.Groups) != 2 {
		t.Fatalf("consortium groups %v", cons)
	}
	if _, ok := cons.Groups["Org1"].Policies["Endorsement"]; !ok {
		t.Fatal("consortium org lacks an Endorsement policy")
	}
}

func TestProfileErrors(t *testing.T) {
	base := testProfile(t)
	cases := []struct {
		name   string
		mutate func(p *Profile)
		want   string
	}{
		{"no brokers", func(p *Profile) { p.Brokers = nil }, "no Kafka brokers"},
		{"no orderer org", func(p *Profile) { p.OrdererOrgs = nil }, "no orderer organization"},
		{"no endpoints", func(p *Profile) { p.OrdererOrgs[0].Endpoints = nil }, "has no endpoints"},
		{"preferred > absolute", func(p *Profile) { p.PreferredMaxBytes = p.AbsoluteMaxBytes + 1 }, "exceeds AbsoluteMaxBytes"},
		{"missing MSP dir", func(p *Profile) { p.ConsortiumOrgs[0].MSPDir = "/nonexistent/msp" }, "/nonexistent/msp/cacerts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.OrdererOrgs = slices.Clone(base.OrdererOrgs)
			p.ConsortiumOrgs = slices.Clone(base.ConsortiumOrgs)
			tc.mutate(&p)
			_, err := SystemChannelBlock(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestChannelCreateTx(t *testing.T) {
	p := testProfile(t)
	env, err := ChannelCreateTx(p, "mychannel")
	if err != nil {
		t.Fatal(err)
	}
	chdr, payload := channelHeaderOf(t, env)
	if chdr.Type != int32(cb.HeaderType_CONFIG_UPDATE) || chdr.ChannelId != "mychannel" {
		t.Fatalf("channel header %v", chdr)
	}
	cue := &cb.ConfigUpdateEnvelope{}
	if err := proto.Unmarshal(payload.Data, cue); err != nil {
		t.Fatal(err)
	}
	cu := &cb.ConfigUpdate{}
	if err := proto.Unmarshal(cue.ConfigUpdate, cu); err != nil {
		t.Fatal(err)
	}
	if cu.ChannelId != "mychannel" {
		t.Fatalf("update channel %q", cu.ChannelId)
	}
	cons := &cb.Consortium{}
	value(t, cu.WriteSet, "Consortium", cons)
	if cons.Name != DefaultConsortium {
		t.Fatalf("consortium %q", cons.Name)
	}
	app := cu.WriteSet.Groups["Application"]
	if app == nil || app.Version != 1 || len(app.Groups) != 2 {
		t.Fatalf("application write set %v", app)
	}

	// Same shape as configtxgen's -outputCreateChannelTx (org names aside).
	ref := &cb.Envelope{}
	raw, err := os.ReadFile(filepath.Join(conformanceDir, "channel-create", "mychannel.tx"))
	if err != nil {
		t.Skipf("conformance vectors not available: %v", err)
	}
	if err := proto.Unmarshal(raw, ref); err != nil {
		t.Fatal(err)
	}
	refHdr, refPayload := channelHeaderOf(t, ref)
	if refHdr.Type != chdr.Type {
		t.Fatalf("header type %d, configtxgen %d", chdr.Type, refHdr.Type)
	}
	refCUE := &cb.ConfigUpdateEnvelope{}
	refCU := &cb.ConfigUpdate{}
	if err := proto.Unmarshal(refPayload.Data, refCUE); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(refCUE.ConfigUpdate, refCU); err != nil {
		t.Fatal(err)
	}
	refApp := refCU.WriteSet.Groups["Application"]
	if !slices.Equal(sortedKeys(app.Policies), sortedKeys(refApp.Policies)) ||
		!slices.Equal(sortedKeys(app.Values), sortedKeys(refApp.Values)) ||
		!slices.Equal(sortedKeys(cu.ReadSet.Values), sortedKeys(refCU.ReadSet.Values)) ||
		!slices.Equal(sortedKeys(cu.WriteSet.Values), sortedKeys(refCU.WriteSet.Values)) {
		t.Fatalf("create tx shape differs from configtxgen's")
	}
	for _, k := range []string{"Readers", "Writers", "Admins", "Endorsement", "LifecycleEndorsement"} {
		if !bytes.Equal(app.Policies[k].Policy.Value, refApp.Policies[k].Policy.Value) {
			t.Errorf("application policy %s differs from configtxgen's", k)
		}
	}
}

// TestMatchesConfigtxgen reads the configtxgen-made genesis block of the
// conformance vectors with the same helpers and checks that we produce the
// same structure, and byte-identical values where the inputs are the same.
func TestMatchesConfigtxgen(t *testing.T) {
	ref := readBlockFile(t, filepath.Join(conformanceDir, "genesis.block"))
	refCfg, err := ConfigFromBlock(ref)
	if err != nil {
		t.Fatal(err)
	}
	p := testProfile(t)
	block, err := SystemChannelBlock(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromBlock(block)
	if err != nil {
		t.Fatal(err)
	}

	refOrd, ord := readOrderer(t, refCfg), readOrderer(t, cfg)
	if refOrd.consensusType != ord.consensusType || !slices.Equal(refOrd.brokers, ord.brokers) ||
		refOrd.batchTimeout != ord.batchTimeout || !proto.Equal(refOrd.batchSize, ord.batchSize) {
		t.Fatalf("orderer values differ: configtxgen %+v, ours %+v", refOrd, ord)
	}

	refO, o := refCfg.ChannelGroup.Groups["Orderer"], cfg.ChannelGroup.Groups["Orderer"]
	if !slices.Equal(sortedKeys(refO.Values), sortedKeys(o.Values)) {
		t.Errorf("Orderer values: configtxgen %v, ours %v", sortedKeys(refO.Values), sortedKeys(o.Values))
	}
	if !slices.Equal(sortedKeys(refO.Policies), sortedKeys(o.Policies)) {
		t.Errorf("Orderer policies: configtxgen %v, ours %v", sortedKeys(refO.Policies), sortedKeys(o.Policies))
	}
	if !slices.Equal(sortedKeys(refO.Groups), sortedKeys(o.Groups)) {
		t.Errorf("Orderer groups: configtxgen %v, ours %v", sortedKeys(refO.Groups), sortedKeys(o.Groups))
	}
	for k, rv := range refO.Values {
		if v, ok := o.Values[k]; ok && (!bytes.Equal(rv.Value, v.Value) || rv.ModPolicy != v.ModPolicy) {
			t.Errorf("Orderer value %s differs from configtxgen's", k)
		}
	}
	for k, rp := range refO.Policies {
		if pol, ok := o.Policies[k]; ok && !proto.Equal(rp, pol) {
			t.Errorf("Orderer policy %s differs from configtxgen's", k)
		}
	}
	refOrg, org := refO.Groups["OrdererOrg"], o.Groups["OrdererOrg"]
	if !slices.Equal(sortedKeys(refOrg.Values), sortedKeys(org.Values)) || !slices.Equal(sortedKeys(refOrg.Policies), sortedKeys(org.Policies)) {
		t.Errorf("OrdererOrg keys: configtxgen %v/%v, ours %v/%v",
			sortedKeys(refOrg.Values), sortedKeys(refOrg.Policies), sortedKeys(org.Values), sortedKeys(org.Policies))
	}
	for k, rp := range refOrg.Policies {
		if !proto.Equal(rp, org.Policies[k]) {
			t.Errorf("OrdererOrg policy %s differs from configtxgen's", k)
		}
	}

	// Channel level: configtxgen also writes the deprecated global
	// OrdererAddresses, which fabric-config v0.1.0 does not.
	refCh, ch := refCfg.ChannelGroup, cfg.ChannelGroup
	for k, rv := range refCh.Values {
		if k == "OrdererAddresses" {
			continue
		}
		v, ok := ch.Values[k]
		if !ok || !bytes.Equal(rv.Value, v.Value) {
			t.Errorf("channel value %s differs from configtxgen's", k)
		}
	}
	for k, rp := range refCh.Policies {
		if !proto.Equal(rp, ch.Policies[k]) {
			t.Errorf("channel policy %s differs from configtxgen's", k)
		}
	}

	// Consortium: same group and policy layout; application org policies
	// differ only by the org name embedded in them.
	refCons, cons := refCh.Groups["Consortiums"], ch.Groups["Consortiums"]
	if !proto.Equal(refCons.Policies["Admins"], cons.Policies["Admins"]) {
		t.Error("Consortiums Admins policy differs from configtxgen's")
	}
	refSC, sc := refCons.Groups[DefaultConsortium], cons.Groups[DefaultConsortium]
	if !bytes.Equal(refSC.Values["ChannelCreationPolicy"].Value, sc.Values["ChannelCreationPolicy"].Value) {
		t.Error("ChannelCreationPolicy differs from configtxgen's")
	}
	refOrg1, org1 := refSC.Groups["Org1MSP"], sc.Groups["Org1"]
	if !slices.Equal(sortedKeys(refOrg1.Policies), sortedKeys(org1.Policies)) || !slices.Equal(sortedKeys(refOrg1.Values), sortedKeys(org1.Values)) {
		t.Errorf("consortium org keys: configtxgen %v/%v, ours %v/%v",
			sortedKeys(refOrg1.Values), sortedKeys(refOrg1.Policies), sortedKeys(org1.Values), sortedKeys(org1.Policies))
	}
	for k, rp := range refOrg1.Policies {
		if !proto.Equal(rp, org1.Policies[k]) {
			t.Errorf("consortium org policy %s differs from configtxgen's", k)
		}
	}
}
