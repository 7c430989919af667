package msptest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

func sValue(t *testing.T, sig []byte) *big.Int {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	return rs.S
}

func TestOrgMaterial(t *testing.T) {
	org := NewOrgWithIntermediate(t, "Org1MSP")
	half := new(big.Int).Rsh(org.Client.Key.Curve.Params().N, 1)
	msg := []byte("m")
	digest := sha256.Sum256(msg)
	for i := range 20 {
		low, high := org.Client.Sign(msg), org.Client.SignHighS(msg)
		if sValue(t, low).Cmp(half) > 0 || sValue(t, high).Cmp(half) <= 0 {
			t.Fatalf("round %d: wrong S forms", i)
		}
		if !ecdsa.VerifyASN1(&org.Client.Key.PublicKey, digest[:], low) || !ecdsa.VerifyASN1(&org.Client.Key.PublicKey, digest[:], high) {
			t.Fatal("signature does not verify")
		}
	}
	if err := org.Client.Cert.CheckSignatureFrom(org.CA.Cert); err != nil {
		t.Fatal(err)
	}
	if err := org.CA.Cert.CheckSignatureFrom(org.Root.Cert); err != nil {
		t.Fatal(err)
	}
	if sValue(t, org.Client.Cert.Signature).Cmp(half) > 0 {
		t.Fatal("certificate signature is high-S")
	}
	block, _ := pem.Decode(HighSCertPEM(t, org.Client.Cert, org.CA))
	highCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := highCert.CheckSignatureFrom(org.CA.Cert); err != nil || sValue(t, highCert.Signature).Cmp(half) <= 0 {
		t.Fatalf("high-S variant: %v", err)
	}
	if !org.Expired.Cert.NotAfter.Before(time.Now()) || org.Expired.Cert.NotBefore.Before(org.CA.Cert.NotBefore) {
		t.Fatal("expired identity is not expired, or predates its CA")
	}
	block, _ = pem.Decode(org.CRL)
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(org.CA.Cert); err != nil || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(org.Revoked.Cert.SerialNumber) != 0 {
		t.Fatalf("CRL: %v", err)
	}
	var sid mspproto.SerializedIdentity
	if err := proto.Unmarshal(org.Admin.Serialize(), &sid); err != nil || sid.Mspid != "Org1MSP" || string(sid.IdBytes) != string(org.Admin.CertPEM) {
		t.Fatalf("Serialize: %v", err)
	}
	var fc mspproto.FabricMSPConfig
	if err := proto.Unmarshal(org.MSPConfig(false).Config, &fc); err != nil || len(fc.IntermediateCerts) != 1 || len(fc.Admins) != 1 || fc.FabricNodeOus != nil {
		t.Fatalf("config without NodeOUs: %v", err)
	}
	if g := OrgGroup(org.MSPConfig(true)); g.Values["MSP"] == nil {
		t.Fatal("OrgGroup has no MSP value")
	}
}
