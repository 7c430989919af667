package genesis

import (
	"os"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/msptest"
)

// TestMSPDirWithIntermediateAndCRL: an organization whose identities come from an
// intermediate CA and whose MSP directory holds a CRL gets, in the genesis block, the MSP
// configtxgen would write from the same directory (the CRL included), and that MSP admits the
// organization's client and refuses its revoked certificate.
func TestMSPDirWithIntermediateAndCRL(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	dir := t.TempDir()
	org.WriteMSPDir(t, dir, true)

	p := testProfile(t)
	p.ConsortiumOrgs = []OrgSpec{{Name: "Org1", ID: "Org1MSP", MSPDir: dir}}
	block, err := SystemChannelBlock(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromBlock(block)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.ChannelGroup.Groups["Consortiums"].Groups[DefaultConsortium].Groups["Org1"]
	conf := &mspproto.MSPConfig{}
	value(t, g, "MSP", conf)
	got := &mspproto.FabricMSPConfig{}
	if err := proto.Unmarshal(conf.Config, got); err != nil {
		t.Fatal(err)
	}
	refConf, err := msp.VerifyingMSPConfig(dir, "Org1MSP")
	if err != nil {
		t.Fatal(err)
	}
	want := &mspproto.FabricMSPConfig{}
	if err := proto.Unmarshal(refConf.Config, want); err != nil {
		t.Fatal(err)
	}
	if len(got.RevocationList) != 1 || len(got.IntermediateCerts) != 1 {
		t.Fatalf("genesis MSP has %d CRLs and %d intermediate certs, want 1 and 1", len(got.RevocationList), len(got.IntermediateCerts))
	}
	if !proto.Equal(got, want) {
		t.Fatalf("genesis MSP differs from the directory read as configtxgen reads it:\ngot  %v\nwant %v", got, want)
	}

	m, err := msp.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     *msptest.Identity
		reason string
	}{{org.Client, ""}, {org.Admin, ""}, {org.Revoked, "revoked"}} {
		id, err := m.DeserializeIdentity(c.id.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		err = id.Validate()
		if c.reason == "" && err != nil || c.reason != "" && (err == nil || !strings.Contains(err.Error(), c.reason)) {
			t.Errorf("%s: Validate() = %v, want %q", c.id.Cert.Subject.CommonName, err, c.reason)
		}
	}
}

func TestMSPDirBadCRL(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	dir := t.TempDir()
	org.WriteMSPDir(t, dir, true)
	for _, tc := range []struct{ content, want string }{
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", `want "X509 CRL"`},
		{"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "parsing CRL"},
	} {
		writeFile(t, dir+"/crls/crl.pem", tc.content)
		if _, err := OrgFromMSPDir("Org1", "Org1MSP", dir); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "crl.pem") {
			t.Errorf("CRL %q: error %v, want one naming the file and %q", tc.content, err, tc.want)
		}
	}
	// A file without PEM is skipped, as Fabric skips it.
	writeFile(t, dir+"/crls/crl.pem", "not pem")
	o, err := OrgFromMSPDir("Org1", "Org1MSP", dir)
	if err != nil || len(o.MSP.RevocationList) != 0 {
		t.Fatalf("non-PEM file in crls: %v, %d CRLs", err, len(o.MSP.RevocationList))
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNodeOUsWithoutCertificate: config.yaml may leave a NodeOU identifier's Certificate out,
// which Fabric reads as "any CA of the MSP". The genesis block binds it to the CA that issues
// the MSP's identities (the intermediate when there is one), so the organization's client is
// still classified as a client; with two issuing CAs that cannot be expressed, which is an
// error naming the file rather than a binding that refuses half the organization.
func TestNodeOUsWithoutCertificate(t *testing.T) {
	const unbound = "NodeOUs:\n  Enable: true\n" +
		"  ClientOUIdentifier: {OrganizationalUnitIdentifier: client}\n" +
		"  PeerOUIdentifier: {OrganizationalUnitIdentifier: peer}\n" +
		"  AdminOUIdentifier: {OrganizationalUnitIdentifier: admin}\n" +
		"  OrdererOUIdentifier: {OrganizationalUnitIdentifier: orderer}\n"
	for _, org := range []*msptest.Org{msptest.NewOrgWithIntermediate(t, "Org1MSP"), msptest.NewOrg(t, "Org2MSP")} {
		dir := t.TempDir()
		org.WriteMSPDir(t, dir, true)
		writeFile(t, dir+"/config.yaml", unbound)
		p := testProfile(t)
		p.ConsortiumOrgs = []OrgSpec{{Name: "Org", ID: org.MSPID, MSPDir: dir}}
		block, err := SystemChannelBlock(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFromBlock(block)
		if err != nil {
			t.Fatal(err)
		}
		conf := &mspproto.MSPConfig{}
		value(t, cfg.ChannelGroup.Groups["Consortiums"].Groups[DefaultConsortium].Groups["Org"], "MSP", conf)
		m, err := msp.New(conf)
		if err != nil {
			t.Fatal(err)
		}
		id, err := m.DeserializeIdentity(org.Client.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		if err := id.Validate(); err != nil {
			t.Errorf("%s: client not valid: %v", org.MSPID, err)
		}
		if err := id.SatisfiesPrincipal(msptest.RolePrincipal(org.MSPID, mspproto.MSPRole_CLIENT)); err != nil {
			t.Errorf("%s: client not classified as a client: %v", org.MSPID, err)
		}
	}

	org := msptest.NewOrg(t, "Org3MSP")
	dir := t.TempDir()
	org.WriteMSPDir(t, dir, true)
	writeFile(t, dir+"/config.yaml", unbound)
	writeFile(t, dir+"/cacerts/second.pem", string(msptest.NewRootCA(t, "second").CertPEM))
	if _, err := OrgFromMSPDir("Org3", "Org3MSP", dir); err == nil || !strings.Contains(err.Error(), "config.yaml") || !strings.Contains(err.Error(), "2 CAs") {
		t.Fatalf("two roots and an unbound NodeOU: %v", err)
	}
}
