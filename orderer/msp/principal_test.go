package msp

import (
	"testing"

	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/msptest"
)

func TestSatisfiesPrincipal(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	org2 := msptest.NewOrg(t, "Org2MSP")
	nodeOUs := buildMSP(t, org.FabricConfig(true), V1_4_3)
	explicit := buildMSP(t, org.FabricConfig(false), V1_4_3)
	// NodeOUs plus an explicit admin that is a client: both admin rules apply.
	mixedConf := org.FabricConfig(true)
	mixedConf.Admins = [][]byte{org.Client.CertPEM}
	mixed := buildMSP(t, mixedConf, V1_4_3)
	v11Conf := org.FabricConfig(false)
	v11Conf.FabricNodeOus = &mspproto.FabricNodeOUs{
		Enable:             true,
		ClientOuIdentifier: &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: msptest.OUClient},
		PeerOuIdentifier:   &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: msptest.OUPeer},
	}
	v11Conf.Admins = [][]byte{org.Client.CertPEM}
	v11 := buildMSP(t, v11Conf, V1_1)
	v13 := buildMSP(t, v11Conf, V1_3)

	role := func(r mspproto.MSPRole_MSPRoleType) *mspproto.MSPPrincipal {
		return msptest.RolePrincipal("Org1MSP", r)
	}
	certifiers := msptest.Certifiers(org.CA.Cert)
	highSClient := &msptest.Identity{MSPID: "Org1MSP", CertPEM: msptest.HighSCertPEM(t, org.Client.Cert, org.CA)}

	cases := []struct {
		name      string
		msp       *MSP
		id        *msptest.Identity
		principal *mspproto.MSPPrincipal
		want      string
	}{
		{"member: client", nodeOUs, org.Client, role(mspproto.MSPRole_MEMBER), ""},
		{"member: expired", nodeOUs, org.Expired, role(mspproto.MSPRole_MEMBER), ""},
		{"member: revoked", nodeOUs, org.Revoked, role(mspproto.MSPRole_MEMBER), "revoked"},
		{"member: no node OU", nodeOUs, org.Member, role(mspproto.MSPRole_MEMBER), "node OU"},
		{"member of another MSP", nodeOUs, org.Client, msptest.RolePrincipal("Org2MSP", mspproto.MSPRole_MEMBER), "principal names MSP Org2MSP but identity Org1MSP/CN=client@Org1MSP belongs to MSP Org1MSP"},
		{"admin by OU", nodeOUs, org.Admin, role(mspproto.MSPRole_ADMIN), ""},
		{"client is not admin", nodeOUs, org.Client, role(mspproto.MSPRole_ADMIN), `does not carry the admin OU "admin"`},
		{"explicit admin under NodeOUs", mixed, org.Client, role(mspproto.MSPRole_ADMIN), ""},
		{"admin OU still counts next to explicit admins", mixed, org.Admin, role(mspproto.MSPRole_ADMIN), ""},
		{"admin OU next to another node OU", nodeOUs, org.Issue(t, "x", msptest.CertOptions{OUs: []string{msptest.OUAdmin, msptest.OUClient}}), role(mspproto.MSPRole_ADMIN), "more than one node OU"},
		{"explicit admin", explicit, org.Admin, role(mspproto.MSPRole_ADMIN), ""},
		{"explicit admin presented in high-S encoding", mixed, highSClient, role(mspproto.MSPRole_ADMIN), ""},
		{"admin OU without NodeOUs is not admin", explicit, org.Client, role(mspproto.MSPRole_ADMIN), "is not an admin of MSP Org1MSP"},
		{"client", nodeOUs, org.Client, role(mspproto.MSPRole_CLIENT), ""},
		{"peer is not client", nodeOUs, org.Peer, role(mspproto.MSPRole_CLIENT), `does not carry the client OU "client"`},
		{"peer", nodeOUs, org.Peer, role(mspproto.MSPRole_PEER), ""},
		{"orderer", nodeOUs, org.Orderer, role(mspproto.MSPRole_ORDERER), ""},
		{"client is not orderer", nodeOUs, org.Client, role(mspproto.MSPRole_ORDERER), "orderer OU"},
		{"revoked orderer-role check validates", nodeOUs, org.Revoked, role(mspproto.MSPRole_ORDERER), "revoked"},
		{"client role without NodeOUs", explicit, org.Client, role(mspproto.MSPRole_CLIENT), "does not enable NodeOUs"},
		{"orderer role without NodeOUs", explicit, org.Orderer, role(mspproto.MSPRole_ORDERER), "cannot recognise the orderer role"},
		{"unknown role", nodeOUs, org.Client, role(mspproto.MSPRole_MSPRoleType(9)), "unknown MSP role 9"},
		{"role that does not parse", nodeOUs, org.Client, &mspproto.MSPPrincipal{Principal: []byte{0xff}}, "role principal does not parse"},
		{"OU with certifiers", nodeOUs, org.Client, msptest.OUPrincipal("Org1MSP", msptest.OUClient, certifiers), ""},
		{"OU without certifiers never matches", nodeOUs, org.Client, msptest.OUPrincipal("Org1MSP", msptest.OUClient, nil), "does not carry OU"},
		{"OU of other certifiers", nodeOUs, org.Client, msptest.OUPrincipal("Org1MSP", msptest.OUClient, msptest.Certifiers(org2.CA.Cert)), "does not carry OU"},
		{"OU not carried", nodeOUs, org.Peer, msptest.OUPrincipal("Org1MSP", msptest.OUClient, certifiers), "does not carry OU"},
		{"OU of another MSP", nodeOUs, org.Client, msptest.OUPrincipal("Org2MSP", msptest.OUClient, certifiers), "names MSP Org2MSP"},
		{"OU validates", nodeOUs, org.Revoked, msptest.OUPrincipal("Org1MSP", msptest.OUClient, certifiers), "revoked"},
		{"identity", nodeOUs, org.Client, msptest.IdentityPrincipal(org.Client), ""},
		{"identity, principal in high-S encoding", nodeOUs, org.Client, msptest.IdentityPrincipal(highSClient), ""},
		{"other identity", nodeOUs, org.Client, msptest.IdentityPrincipal(org.Peer), "is not the identity"},
		{"identity principal of another MSP", nodeOUs, org.Client, msptest.IdentityPrincipal(org2.Client), "identity principal"},
		{"identity principal validates", nodeOUs, org.Revoked, msptest.IdentityPrincipal(org.Revoked), "revoked"},
		{"combined", nodeOUs, org.Client, msptest.CombinedPrincipal(role(mspproto.MSPRole_MEMBER), role(mspproto.MSPRole_CLIENT)), ""},
		{"nested combined", nodeOUs, org.Admin, msptest.CombinedPrincipal(role(mspproto.MSPRole_MEMBER), msptest.CombinedPrincipal(role(mspproto.MSPRole_ADMIN))), ""},
		{"combined needs all", nodeOUs, org.Client, msptest.CombinedPrincipal(role(mspproto.MSPRole_CLIENT), role(mspproto.MSPRole_ADMIN)), "admin OU"},
		{"empty combined", nodeOUs, org.Client, msptest.CombinedPrincipal(), "no principals"},
		{"nominal", nodeOUs, org.Client, msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_NOMINAL), ""},
		{"nominal does not validate (as Fabric)", nodeOUs, org.Revoked, msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_NOMINAL), ""},
		{"anonymous", nodeOUs, org.Client, msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_ANONYMOUS), "not one"},
		{"unknown classification", nodeOUs, org.Client, &mspproto.MSPPrincipal{PrincipalClassification: 7}, "does not support principal classification 7"},

		{"v1.1: client", v11, org.Client, role(mspproto.MSPRole_CLIENT), ""},
		{"v1.1: explicit admin", v11, org.Client, role(mspproto.MSPRole_ADMIN), ""},
		{"v1.1: admin OU is not admin", v11, org.Admin, role(mspproto.MSPRole_ADMIN), "is not an admin"},
		{"v1.1: admin OU is not even a member", v11, org.Admin, role(mspproto.MSPRole_MEMBER), "no client or peer node OU"},
		{"v1.1: orderer role", v11, org.Orderer, role(mspproto.MSPRole_ORDERER), "cannot recognise the orderer role"},
		{"v1.1: combined unsupported", v11, org.Client, msptest.CombinedPrincipal(role(mspproto.MSPRole_MEMBER)), "does not support COMBINED principals"},
		{"v1.1: anonymity unsupported", v11, org.Client, msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_NOMINAL), "does not support principal classification ANONYMITY"},
		{"v1.3: combined", v13, org.Client, msptest.CombinedPrincipal(role(mspproto.MSPRole_MEMBER)), ""},
		{"v1.3: nominal", v13, org.Client, msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_NOMINAL), ""},
		{"v1.3: orderer OU is not a node OU yet", v13, org.Orderer, role(mspproto.MSPRole_MEMBER), "no client or peer node OU"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.msp.DeserializeIdentity(tc.id.SerializeAs("Org1MSP"))
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, id.SatisfiesPrincipal(tc.principal), tc.want)
		})
	}
}

func TestSetupVersionRules(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	cases := []struct {
		name    string
		version Version
		edit    func(fc *mspproto.FabricMSPConfig)
		want    string
	}{
		{"v1.4.3 NodeOUs without admin OU nor admins", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.AdminOuIdentifier = nil
		}, "administrators must be declared"},
		{"v1.4.3 NodeOUs disabled and no admins", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.Enable = false
		}, "administrators must be declared"},
		{"v1.4.3 explicit admin must carry client or admin OU", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.Admins = [][]byte{org.Peer.CertPEM}
		}, "admin cert 0 must carry the client or the admin OU"},
		{"v1.4.3 explicit admin with client OU", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.Admins = [][]byte{org.Client.CertPEM}
		}, ""},
		{"v1.4.3 empty NodeOUs disable classification", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus = &mspproto.FabricNodeOUs{Enable: true}
			fc.Admins = [][]byte{org.Admin.CertPEM}
		}, ""},
		{"v1.1 NodeOUs without peer OU", V1_1, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.PeerOuIdentifier = nil
		}, "peer OU identifier is missing"},
		{"v1.1 NodeOUs without client OU, even disabled", V1_1, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.Enable = false
			fc.FabricNodeOus.ClientOuIdentifier = nil
		}, "client OU identifier is missing"},
		{"v1.1 admin must be a client", V1_1, func(fc *mspproto.FabricMSPConfig) {
			fc.Admins = [][]byte{org.Admin.CertPEM}
		}, "admin cert 0 is not a valid member"},
		{"v1.1 no admins is fine", V1_1, func(fc *mspproto.FabricMSPConfig) {}, ""},
		{"v1.0 ignores NodeOUs", V1_0, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.PeerOuIdentifier = nil
		}, ""},
		{"revoked explicit admin", V1_4_3, func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus = nil
			fc.Admins = [][]byte{org.Revoked.CertPEM}
		}, "admin cert 0 is not a valid member"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := org.FabricConfig(true)
			tc.edit(fc)
			_, err := NewVersion(msptest.Wrap(fc), tc.version)
			wantErr(t, err, tc.want)
		})
	}

	m := buildMSP(t, org.FabricConfig(true), V1_0)
	id, err := m.DeserializeIdentity(org.Member.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.Validate(), "")
	if m.NodeOUs() || m.Version() != V1_0 {
		t.Fatal("v1.0 MSP classifies by NodeOUs")
	}
}

func TestVersionForCapabilities(t *testing.T) {
	for _, tc := range []struct {
		caps []string
		want Version
	}{
		{nil, V1_0},
		{[]string{"V1_1"}, V1_1},
		{[]string{"V1_1", "V1_3"}, V1_3},
		{[]string{"V1_4_2"}, V1_3},
		{[]string{"V1_4_3"}, V1_4_3},
		{[]string{"V2_0"}, V1_4_3},
	} {
		names := map[string]bool{}
		for _, c := range tc.caps {
			names[c] = true
		}
		if got := VersionForCapabilities(names); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.caps, got, tc.want)
		}
	}
	if V1_4_3.String() != "v1.4.3" || Version(9).String() != "Version(9)" {
		t.Fatal("Version.String")
	}
}

func TestCombinedPrincipalDepth(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m := buildMSP(t, org.FabricConfig(true), V1_4_3)
	id, err := m.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	nest := func(levels int) *mspproto.MSPPrincipal {
		p := msptest.RolePrincipal("Org1MSP", mspproto.MSPRole_MEMBER)
		for range levels {
			p = msptest.CombinedPrincipal(p)
		}
		return p
	}
	wantErr(t, id.SatisfiesPrincipal(nest(maxPrincipalDepth)), "")
	wantErr(t, id.SatisfiesPrincipal(nest(maxPrincipalDepth+1)), "nested more than")
}
