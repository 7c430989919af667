package msp

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/mspgen"
	"github.com/kordhq/kord/orderer/msp/msptest"
)

// nodeOUsYAML binds the four node OUs to the CA file caFile, as cryptogen writes it.
func nodeOUsYAML(caFile string) []byte {
	return bytes.ReplaceAll([]byte(nodeOUsTemplate), []byte("cacerts/ca.pem"), []byte(caFile))
}

const nodeOUsTemplate = `NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
`

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeLocalMSP writes a local MSP directory for id of org, as Fabric CA or cryptogen
// would.
func writeLocalMSP(t testing.TB, org *msptest.Org, id *msptest.Identity) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "msp")
	writeFile(t, filepath.Join(dir, "cacerts", "ca.pem"), org.Root.CertPEM)
	issuer := "cacerts/ca.pem"
	if org.CA != org.Root {
		writeFile(t, filepath.Join(dir, "intermediatecerts", "ica.pem"), org.CA.CertPEM)
		issuer = "intermediatecerts/ica.pem"
	}
	writeFile(t, filepath.Join(dir, "tlscacerts", "tlsca.pem"), org.TLSRoot.CertPEM)
	writeFile(t, filepath.Join(dir, "config.yaml"), nodeOUsYAML(issuer))
	writeFile(t, filepath.Join(dir, "signcerts", "cert.pem"), id.CertPEM)
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keystore", "priv_sk"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return dir
}

func TestLoadLocalMSPFromMSPGen(t *testing.T) {
	tree := sharedTree(t)
	org1 := mspgen.PeerOrgDir(tree, "org1.example.com")
	ordOrg := mspgen.OrdererOrgDir(tree, "example.com")
	org1MSP, err := LoadLocalMSP(mspgen.OrgMSPDir(org1), "Org1MSP")
	if err != nil {
		t.Fatal(err)
	}
	ordMSP, err := LoadLocalMSP(mspgen.OrgMSPDir(ordOrg), "OrdererMSP")
	if err != nil {
		t.Fatal(err)
	}
	mg, err := NewManager(org1MSP, ordMSP)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, mspID string
		role       mspproto.MSPRole_MSPRoleType
	}{
		{mspgen.UserMSPDir(org1, "org1.example.com", "User1"), "Org1MSP", mspproto.MSPRole_CLIENT},
		{mspgen.UserMSPDir(org1, "org1.example.com", mspgen.AdminUser), "Org1MSP", mspproto.MSPRole_ADMIN},
		{mspgen.PeerMSPDir(org1, "org1.example.com", "peer0"), "Org1MSP", mspproto.MSPRole_PEER},
		{mspgen.OrdererMSPDir(ordOrg, "example.com", "orderer0"), "OrdererMSP", mspproto.MSPRole_ORDERER},
	} {
		s, err := LoadSigner(tc.dir, tc.mspID)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Validate(), "")
		id, err := mg.DeserializeIdentity(s.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, id.Validate(), "")
		wantErr(t, id.SatisfiesPrincipal(msptest.RolePrincipal(tc.mspID, tc.role)), "")
		msg := []byte("block header")
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, id.Verify(msg, sig), "")
	}

	// The configuration read from the directory carries what configtxgen would put in a
	// channel: the CA and TLS CA files, NodeOUs bound to the CA, no signing identity.
	conf, err := VerifyingMSPConfig(mspgen.OrgMSPDir(org1), "Org1MSP")
	if err != nil {
		t.Fatal(err)
	}
	var fc mspproto.FabricMSPConfig
	if err := proto.Unmarshal(conf.Config, &fc); err != nil {
		t.Fatal(err)
	}
	caFile, err := os.ReadFile(filepath.Join(mspgen.OrgMSPDir(org1), "cacerts", "ca.org1.example.com-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fc.Name != "Org1MSP" || len(fc.RootCerts) != 1 || !bytes.Equal(fc.RootCerts[0], caFile) || len(fc.TlsRootCerts) != 1 ||
		fc.FabricNodeOus == nil || !fc.FabricNodeOus.Enable || !bytes.Equal(fc.FabricNodeOus.AdminOuIdentifier.Certificate, caFile) ||
		fc.SigningIdentity != nil || fc.CryptoConfig.SignatureHashFamily != "SHA2" || len(fc.Admins) != 0 {
		t.Fatalf("unexpected config: %v", &fc)
	}
}

func TestLoadLocalMSPErrors(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	other := msptest.NewOrg(t, "Org2MSP")
	cases := []struct {
		name    string
		prepare func(dir string)
		want    string
	}{
		{"valid", func(dir string) {}, ""},
		{"NodeOUs bound to the root while identities come from the intermediate", func(dir string) {
			writeFile(t, filepath.Join(dir, "config.yaml"), nodeOUsYAML("cacerts/ca.pem"))
			writeFile(t, filepath.Join(dir, "admincerts", "admin.pem"), org.Admin.CertPEM)
		}, ""},
		{"missing directory", func(dir string) { os.RemoveAll(dir) }, "cacerts"},
		{"no cacerts", func(dir string) { os.RemoveAll(filepath.Join(dir, "cacerts")) }, "cacerts"},
		{"cacerts without PEM", func(dir string) {
			os.Remove(filepath.Join(dir, "cacerts", "ca.pem"))
			writeFile(t, filepath.Join(dir, "cacerts", "README"), []byte("certificates go here"))
		}, "holds no PEM certificate"},
		{"non-PEM and hidden-directory entries are skipped", func(dir string) {
			writeFile(t, filepath.Join(dir, "cacerts", "README"), []byte("not pem"))
			writeFile(t, filepath.Join(dir, "cacerts", "..2024_01_01", "ca.pem"), []byte("ignored"))
			writeFile(t, filepath.Join(dir, "crls", "notes.txt"), []byte("none yet"))
		}, ""},
		{"intermediate of another organization", func(dir string) {
			writeFile(t, filepath.Join(dir, "intermediatecerts", "x.pem"), other.Root.NewIntermediateCA(t, "x").CertPEM)
		}, "intermediate cert 1 (CN=x"},
		{"CRL garbage", func(dir string) {
			writeFile(t, filepath.Join(dir, "crls", "crl.pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}}))
		}, "revocation list 0"},
		{"config.yaml not YAML", func(dir string) { writeFile(t, filepath.Join(dir, "config.yaml"), []byte("NodeOUs: [")) }, "parsing"},
		{"OU identifier certificate missing", func(dir string) {
			writeFile(t, filepath.Join(dir, "config.yaml"), []byte("OrganizationalUnitIdentifiers:\n  - Certificate: cacerts/nope.pem\n    OrganizationalUnitIdentifier: x\n"))
		}, "cacerts/nope.pem"},
		{"NodeOU certificate missing is ignored, as Fabric", func(dir string) {
			writeFile(t, filepath.Join(dir, "config.yaml"), nodeOUsYAML("cacerts/nope.pem"))
		}, ""},
		{"NodeOUs disabled and no admincerts", func(dir string) {
			writeFile(t, filepath.Join(dir, "config.yaml"), []byte("NodeOUs:\n  Enable: false\n"))
		}, "administrators must be declared"},
		{"NodeOUs disabled with an admincert", func(dir string) {
			os.Remove(filepath.Join(dir, "config.yaml"))
			writeFile(t, filepath.Join(dir, "admincerts", "admin.pem"), org.Admin.CertPEM)
		}, ""},
		{"admincert of another organization", func(dir string) {
			writeFile(t, filepath.Join(dir, "admincerts", "admin.pem"), other.Admin.CertPEM)
		}, "admin cert 0"},
		{"TLS intermediate without TLS root folder is not read", func(dir string) {
			os.RemoveAll(filepath.Join(dir, "tlscacerts"))
			writeFile(t, filepath.Join(dir, "tlsintermediatecerts", "x.pem"), []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
		}, ""},
		{"TLS intermediate not a certificate", func(dir string) {
			writeFile(t, filepath.Join(dir, "tlsintermediatecerts", "x.pem"), []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
		}, "TLS intermediate cert 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeLocalMSP(t, org, org.Client)
			tc.prepare(dir)
			_, err := LoadLocalMSP(dir, "Org1MSP")
			wantErr(t, err, tc.want)
		})
	}
	if _, err := LoadLocalMSP(writeLocalMSP(t, org, org.Client), ""); err == nil {
		t.Fatal("empty MSP ID accepted")
	}
}

func TestLoadSignerFabricChecks(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	other := msptest.NewOrg(t, "Org2MSP")

	t.Run("intermediate-issued signer", func(t *testing.T) {
		s, err := LoadSigner(writeLocalMSP(t, org, org.Client), "Org1MSP")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Validate(), "")
	})
	t.Run("signer that is not a valid member still loads, as in Fabric", func(t *testing.T) {
		s, err := LoadSigner(writeLocalMSP(t, org, org.Member), "Org1MSP")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Validate(), "node OU")
	})
	t.Run("expired", func(t *testing.T) {
		_, err := LoadSigner(writeLocalMSP(t, org, org.Expired), "Org1MSP")
		wantErr(t, err, "cert.pem expired at")
	})
	t.Run("signcert of another organization", func(t *testing.T) {
		dir := writeLocalMSP(t, org, org.Client)
		writeFile(t, filepath.Join(dir, "signcerts", "cert.pem"), other.Client.CertPEM)
		_, err := LoadSigner(dir, "Org1MSP")
		wantErr(t, err, "signcerts/cert.pem: no valid chain to the CAs of MSP Org1MSP")
	})
	t.Run("a stray file before the certificate", func(t *testing.T) {
		dir := writeLocalMSP(t, org, org.Client)
		writeFile(t, filepath.Join(dir, "signcerts", "0-README"), []byte("the certificate"))
		if _, err := LoadSigner(dir, "Org1MSP"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("high-S signcert serializes canonically", func(t *testing.T) {
		dir := writeLocalMSP(t, org, org.Client)
		writeFile(t, filepath.Join(dir, "signcerts", "cert.pem"), msptest.HighSCertPEM(t, org.Client.Cert, org.CA))
		s, err := LoadSigner(dir, "Org1MSP")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Serialize(), org.Client.Serialize()) {
			t.Fatal("creator is not the canonical certificate")
		}
	})
	t.Run("broken local MSP", func(t *testing.T) {
		dir := writeLocalMSP(t, org, org.Client)
		writeFile(t, filepath.Join(dir, "config.yaml"), []byte("NodeOUs:\n  Enable: false\n"))
		_, err := LoadSigner(dir, "Org1MSP")
		wantErr(t, err, "administrators must be declared")
	})
}
