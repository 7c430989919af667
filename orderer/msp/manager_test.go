package msp

import (
	"sync"
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/msptest"
)

func capabilitiesValue(t testing.TB, names ...string) *cb.ConfigValue {
	t.Helper()
	caps := &cb.Capabilities{Capabilities: map[string]*cb.Capability{}}
	for _, n := range names {
		caps.Capabilities[n] = &cb.Capability{}
	}
	b, err := proto.Marshal(caps)
	if err != nil {
		t.Fatal(err)
	}
	return &cb.ConfigValue{Value: b}
}

func group(children map[string]*cb.ConfigGroup) *cb.ConfigGroup {
	return &cb.ConfigGroup{Groups: children, Values: map[string]*cb.ConfigValue{}}
}

// channelGroup builds /Channel with an orderer org and two application orgs.
func channelGroup(t testing.TB, ord, org1, org2 *msptest.Org, caps ...string) *cb.ConfigGroup {
	t.Helper()
	root := group(map[string]*cb.ConfigGroup{
		"Orderer":     group(map[string]*cb.ConfigGroup{"OrdererOrg": msptest.OrgGroup(ord.MSPConfig(true))}),
		"Application": group(map[string]*cb.ConfigGroup{"Org1": msptest.OrgGroup(org1.MSPConfig(true)), "Org2": msptest.OrgGroup(org2.MSPConfig(true))}),
	})
	root.Values["Capabilities"] = capabilitiesValue(t, caps...)
	return root
}

func TestManagerRouting(t *testing.T) {
	ord := msptest.NewOrg(t, "OrdererMSP")
	org1 := msptest.NewOrg(t, "Org1MSP")
	org2 := msptest.NewOrgWithIntermediate(t, "Org2MSP")
	mg, err := ManagerFromConfig(channelGroup(t, ord, org1, org2, "V2_0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(mg.MSPs()); got != 3 {
		t.Fatalf("%d MSPs", got)
	}
	for _, o := range []*msptest.Org{ord, org1, org2} {
		m, ok := mg.MSP(o.MSPID)
		if !ok || m.Version() != V1_4_3 {
			t.Fatalf("MSP %s: %v %v", o.MSPID, ok, m)
		}
		id, err := mg.DeserializeIdentity(o.Client.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		if id.MSPID() != o.MSPID {
			t.Fatalf("routed to %s", id.MSPID())
		}
		wantErr(t, id.Validate(), "")
		wantErr(t, id.SatisfiesPrincipal(msptest.RolePrincipal(o.MSPID, mspproto.MSPRole_CLIENT)), "")
	}
	ordID, err := mg.DeserializeIdentity(ord.Orderer.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, ordID.SatisfiesPrincipal(msptest.RolePrincipal("OrdererMSP", mspproto.MSPRole_ORDERER)), "")
	wantErr(t, ordID.SatisfiesPrincipal(msptest.RolePrincipal("Org1MSP", mspproto.MSPRole_MEMBER)), "principal names MSP Org1MSP but identity OrdererMSP/CN=orderer@OrdererMSP belongs to MSP OrdererMSP")

	_, err = mg.DeserializeIdentity(org1.Client.SerializeAs("Org3MSP"))
	wantErr(t, err, `MSP ID "Org3MSP" is not defined on this channel`)
	// An identity presented under the wrong (but defined) MSP does not chain there.
	_, err = mg.DeserializeIdentity(org1.Client.SerializeAs("Org2MSP"))
	wantErr(t, err, "no valid chain to the CAs of MSP Org2MSP")
	_, err = mg.DeserializeIdentity([]byte("\xff\xff"))
	wantErr(t, err, "not a serialized identity")

	// The cache hands out the same identity, validation included.
	a, _ := mg.DeserializeIdentity(org1.Client.Serialize())
	b, _ := mg.DeserializeIdentity(org1.Client.Serialize())
	if a != b {
		t.Fatal("identity not cached")
	}
	// A new manager (a config update) does not share it.
	mg2, err := ManagerFromConfig(channelGroup(t, ord, org1, org2, "V2_0"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := mg2.DeserializeIdentity(org1.Client.Serialize())
	if c == a {
		t.Fatal("identity shared across managers")
	}
}

func TestManagerCacheConcurrent(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m, err := New(org.MSPConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	mg, err := NewManager(m)
	if err != nil {
		t.Fatal(err)
	}
	mg.cache = newIDCache(4)
	ids := []*msptest.Identity{org.Client, org.Peer, org.Admin, org.Orderer, org.Member, org.Expired, org.Revoked}
	msg := []byte("m")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				sid := ids[(g+i)%len(ids)]
				id, err := mg.DeserializeIdentity(sid.Serialize())
				if err != nil {
					t.Error(err)
					return
				}
				_ = id.Validate()
				if err := id.Verify(msg, sid.Sign(msg)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := mg.cache.len(); n > 4 {
		t.Fatalf("cache holds %d identities", n)
	}
}

func TestManagerFromConfigRules(t *testing.T) {
	ord := msptest.NewOrg(t, "OrdererMSP")
	org1 := msptest.NewOrg(t, "Org1MSP")
	org2 := msptest.NewOrg(t, "Org2MSP")

	t.Run("system channel consortiums, an org in two consortiums", func(t *testing.T) {
		root := group(map[string]*cb.ConfigGroup{
			"Orderer": group(map[string]*cb.ConfigGroup{"OrdererOrg": msptest.OrgGroup(ord.MSPConfig(true))}),
			"Consortiums": group(map[string]*cb.ConfigGroup{
				"A": group(map[string]*cb.ConfigGroup{"Org1": msptest.OrgGroup(org1.MSPConfig(true))}),
				"B": group(map[string]*cb.ConfigGroup{"Org1": msptest.OrgGroup(org1.MSPConfig(true)), "Org2": msptest.OrgGroup(org2.MSPConfig(true))}),
			}),
		})
		mg, err := ManagerFromConfig(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(mg.MSPs()) != 3 {
			t.Fatalf("%d MSPs", len(mg.MSPs()))
		}
		m, _ := mg.MSP("Org1MSP")
		if m.Version() != V1_0 {
			t.Fatalf("no capabilities: version %v", m.Version())
		}
	})
	t.Run("same MSP ID, different config", func(t *testing.T) {
		root := channelGroup(t, ord, org1, org2)
		root.Groups["Application"].Groups["Org2"] = msptest.OrgGroup(func() *mspproto.MSPConfig {
			fc := org2.FabricConfig(true)
			fc.Name = "Org1MSP"
			return msptest.Wrap(fc)
		}())
		_, err := ManagerFromConfig(root)
		wantErr(t, err, "MSP Org1MSP is defined differently in Channel/Application/Org1 and Channel/Application/Org2")
	})
	t.Run("capabilities select the version", func(t *testing.T) {
		for caps, want := range map[string]Version{"V1_4_2": V1_3, "V1_4_3": V1_4_3, "V1_1": V1_1} {
			mg, err := ManagerFromConfig(channelGroup(t, ord, org1, org2, caps))
			if err != nil {
				t.Fatal(err)
			}
			m, _ := mg.MSP("Org1MSP")
			if m.Version() != want {
				t.Fatalf("%s: %v", caps, m.Version())
			}
		}
	})
	t.Run("invalid MSP names its place", func(t *testing.T) {
		root := channelGroup(t, ord, org1, org2)
		fc := org2.FabricConfig(true)
		fc.RootCerts = nil
		root.Groups["Application"].Groups["Org2"] = msptest.OrgGroup(msptest.Wrap(fc))
		_, err := ManagerFromConfig(root)
		wantErr(t, err, "Channel/Application/Org2: MSP Org2MSP: no root CA certificate")
	})
	t.Run("org without MSP value", func(t *testing.T) {
		root := channelGroup(t, ord, org1, org2)
		delete(root.Groups["Orderer"].Groups["OrdererOrg"].Values, "MSP")
		_, err := ManagerFromConfig(root)
		wantErr(t, err, "Channel/Orderer/OrdererOrg: organization has no MSP value")
	})
	t.Run("MSP value garbage", func(t *testing.T) {
		root := channelGroup(t, ord, org1, org2)
		root.Groups["Orderer"].Groups["OrdererOrg"].Values["MSP"].Value = []byte{0xff}
		_, err := ManagerFromConfig(root)
		wantErr(t, err, "Channel/Orderer/OrdererOrg: MSP value does not parse")
	})
	t.Run("capabilities garbage", func(t *testing.T) {
		root := channelGroup(t, ord, org1, org2)
		root.Values["Capabilities"].Value = []byte{0xff}
		_, err := ManagerFromConfig(root)
		wantErr(t, err, "Channel/Capabilities value does not parse")
	})
	t.Run("nil", func(t *testing.T) {
		_, err := ManagerFromConfig(nil)
		wantErr(t, err, "nil")
		root := channelGroup(t, ord, org1, org2)
		root.Groups["Application"].Groups["Org1"] = nil
		_, err = ManagerFromConfig(root)
		wantErr(t, err, "Channel/Application/Org1: organization group is nil")
	})
}

func TestNewManagerDuplicates(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	a, err := New(org.MSPConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(org.MSPConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewManager(a, b)
	wantErr(t, err, "MSP ID Org1MSP is defined twice")
	_, err = NewManager(a, nil)
	wantErr(t, err, "MSP 1 is nil")
}

func TestManagerVerify(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m, err := New(org.MSPConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	mg, err := NewManager(m)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("envelope")
	wantErr(t, mg.Verify(org.Client.Serialize(), msg, org.Client.Sign(msg)), "")
	wantErr(t, mg.Verify(org.Revoked.Serialize(), msg, org.Revoked.Sign(msg)), "revoked")
	wantErr(t, mg.Verify(org.Client.Serialize(), msg, org.Client.SignHighS(msg)), "high S")
	wantErr(t, mg.Verify(org.Client.SerializeAs("Nope"), msg, org.Client.Sign(msg)), "not defined on this channel")
}
