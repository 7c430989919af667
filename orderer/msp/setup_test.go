package msp

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/msptest"
)

func TestSetupErrors(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	other := msptest.NewOrg(t, "Org2MSP")
	notCA := org.Root.Issue(t, "leaf-as-root", msptest.CertOptions{})
	tlsLeaf := org.TLSRoot.Issue(t, "tls-leaf", msptest.CertOptions{})
	revokedICA := org.Root.NewIntermediateCA(t, "revoked-ica")

	cases := []struct {
		name string
		edit func(fc *mspproto.FabricMSPConfig)
		want string
	}{
		{"valid", func(fc *mspproto.FabricMSPConfig) {}, ""},
		{"empty name", func(fc *mspproto.FabricMSPConfig) { fc.Name = "" }, "empty MSP ID"},
		{"no root", func(fc *mspproto.FabricMSPConfig) { fc.RootCerts = nil }, "MSP Org1MSP: no root CA certificate"},
		{"root not PEM", func(fc *mspproto.FabricMSPConfig) { fc.RootCerts = [][]byte{[]byte("x")} }, "MSP Org1MSP: root cert 0: certificate is not PEM"},
		{"root not a certificate", func(fc *mspproto.FabricMSPConfig) {
			fc.RootCerts = [][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})}
		}, "root cert 0: parsing certificate"},
		{"root that is not self-signed", func(fc *mspproto.FabricMSPConfig) { fc.RootCerts = [][]byte{org.CA.CertPEM} }, "root cert 0"},
		{"leaf as root", func(fc *mspproto.FabricMSPConfig) {
			fc.RootCerts = append(fc.RootCerts, notCA.CertPEM)
		}, "root cert 1"},
		{"intermediate of another root", func(fc *mspproto.FabricMSPConfig) {
			fc.IntermediateCerts = [][]byte{other.Root.NewIntermediateCA(t, "x").CertPEM}
		}, "MSP Org1MSP: intermediate cert 0 (CN=x, SN"},
		{"intermediate that is not a CA", func(fc *mspproto.FabricMSPConfig) {
			fc.IntermediateCerts = append(fc.IntermediateCerts, notCA.CertPEM)
		}, "intermediate cert 1 (CN=leaf-as-root, SN"},
		{"revoked intermediate", func(fc *mspproto.FabricMSPConfig) {
			fc.IntermediateCerts = append(fc.IntermediateCerts, revokedICA.CertPEM)
			fc.RevocationList = append(fc.RevocationList, org.Root.CRL(t, &msptest.Identity{Cert: revokedICA.Cert}))
		}, "intermediate cert 1 (CN=revoked-ica, SN"},
		{"admin of another organization", func(fc *mspproto.FabricMSPConfig) { fc.Admins = [][]byte{other.Admin.CertPEM} }, "admin cert 0 (CN=admin@Org2MSP"},
		{"admin not PEM", func(fc *mspproto.FabricMSPConfig) { fc.Admins = [][]byte{[]byte("no")} }, "admin cert 0: certificate is not PEM"},
		{"CRL garbage", func(fc *mspproto.FabricMSPConfig) { fc.RevocationList = [][]byte{[]byte("junk")} }, "revocation list 0"},
		{"CRL in DER", func(fc *mspproto.FabricMSPConfig) {
			b, _ := pem.Decode(org.CRL)
			fc.RevocationList = [][]byte{b.Bytes}
		}, ""},
		{"OU certificate not a CA of the MSP", func(fc *mspproto.FabricMSPConfig) {
			fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{Certificate: other.Root.CertPEM, OrganizationalUnitIdentifier: "x"}}
		}, `organizational unit identifier 0 ("x")`},
		{"OU certificate missing", func(fc *mspproto.FabricMSPConfig) {
			fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{OrganizationalUnitIdentifier: "x"}}
		}, "certificate is empty"},
		{"OU bound to the root (accepted; identities of the intermediate will not match)", func(fc *mspproto.FabricMSPConfig) {
			fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{Certificate: org.Root.CertPEM, OrganizationalUnitIdentifier: msptest.OUClient}}
		}, ""},
		{"OU bound to an intermediate that issued another intermediate", func(fc *mspproto.FabricMSPConfig) {
			sub := org.CA.NewIntermediateCA(t, "sub")
			fc.IntermediateCerts = append(fc.IntermediateCerts, sub.CertPEM)
			fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{Certificate: org.CA.CertPEM, OrganizationalUnitIdentifier: msptest.OUClient}}
		}, "only a CA at the bottom of the certification tree can certify an OU"},
		{"NodeOU certificate of another organization", func(fc *mspproto.FabricMSPConfig) {
			fc.FabricNodeOus.PeerOuIdentifier.Certificate = other.Root.CertPEM
		}, "NodeOUs: peer OU certificate"},
		{"unknown identity hash", func(fc *mspproto.FabricMSPConfig) { fc.CryptoConfig.IdentityIdentifierHashFunction = "MD5" }, `unknown identity identifier hash function "MD5"`},
		{"SHA384 identity hash", func(fc *mspproto.FabricMSPConfig) { fc.CryptoConfig.IdentityIdentifierHashFunction = "SHA384" }, ""},
		{"no crypto config", func(fc *mspproto.FabricMSPConfig) { fc.CryptoConfig = nil }, ""},
		{"TLS root not a CA", func(fc *mspproto.FabricMSPConfig) { fc.TlsRootCerts = [][]byte{tlsLeaf.CertPEM} }, "TLS root cert 0 (CN=tls-leaf"},
		{"TLS intermediate without its root", func(fc *mspproto.FabricMSPConfig) {
			fc.TlsIntermediateCerts = [][]byte{org.CA.CertPEM}
		}, "TLS intermediate cert 0"},
		{"TLS intermediate with its root", func(fc *mspproto.FabricMSPConfig) {
			fc.TlsRootCerts = append(fc.TlsRootCerts, org.Root.CertPEM)
			fc.TlsIntermediateCerts = [][]byte{org.CA.CertPEM}
		}, ""},
		{"TLS root not PEM", func(fc *mspproto.FabricMSPConfig) { fc.TlsRootCerts = [][]byte{[]byte("x")} }, "TLS root cert 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := org.FabricConfig(true)
			fc.Admins = [][]byte{org.Admin.CertPEM}
			tc.edit(fc)
			m, err := New(msptest.Wrap(fc))
			wantErr(t, err, tc.want)
			if err == nil && m.ID() != fc.Name {
				t.Fatalf("ID = %q", m.ID())
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Fatal("nil config accepted")
	}
	if _, err := New(&mspproto.MSPConfig{Type: 2}); err == nil || !strings.Contains(err.Error(), "unsupported MSP type 2") {
		t.Fatalf("type 2: %v", err)
	}
	if _, err := New(&mspproto.MSPConfig{Config: []byte{0xff}}); err == nil || !strings.Contains(err.Error(), "not a FabricMSPConfig") {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := NewVersion(msptest.NewOrg(t, "A").MSPConfig(true), Version(7)); err == nil {
		t.Fatal("unknown version accepted")
	}

	// An idemix MSP is accepted so that the channel stays usable; its identities never
	// deserialize.
	ic, _ := proto.Marshal(&mspproto.IdemixMSPConfig{Name: "IdemixMSP"})
	m, err := New(&mspproto.MSPConfig{Type: TypeIdemix, Config: ic})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID() != "IdemixMSP" {
		t.Fatalf("ID = %q", m.ID())
	}
	if _, err := m.DeserializeIdentity(msptest.Serialized("IdemixMSP", []byte("x"))); err == nil || !strings.Contains(err.Error(), "idemix") {
		t.Fatalf("idemix identity: %v", err)
	}
	if _, err := New(&mspproto.MSPConfig{Type: TypeIdemix, Config: []byte{0xff}}); err == nil {
		t.Fatal("garbage idemix config accepted")
	}
	if _, err := New(&mspproto.MSPConfig{Type: TypeIdemix}); err == nil {
		t.Fatal("idemix config without name accepted")
	}
}

func TestMSPAccessors(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	conf := org.MSPConfig(true)
	m, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config() != conf || m.Version() != LatestVersion || !m.NodeOUs() {
		t.Fatal("accessors")
	}
	if len(m.TLSRootCerts()) != 1 || string(m.TLSRootCerts()[0]) != string(org.TLSRoot.CertPEM) || len(m.TLSIntermediateCerts()) != 0 {
		t.Fatal("TLS CAs not kept")
	}
}
