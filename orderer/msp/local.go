package msp

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	"gopkg.in/yaml.v3"
)

// Folder and file names of Fabric's MSP directory layout.
const (
	dirCACerts              = "cacerts"
	dirAdminCerts           = "admincerts"
	dirIntermediateCerts    = "intermediatecerts"
	dirSignCerts            = "signcerts"
	dirKeystore             = "keystore"
	dirCRLs                 = "crls"
	dirTLSCACerts           = "tlscacerts"
	dirTLSIntermediateCerts = "tlsintermediatecerts"
	fileConfig              = "config.yaml"
)

// mspDirConfig is config.yaml of an MSP directory.
type mspDirConfig struct {
	OrganizationalUnitIdentifiers []*ouConfig `yaml:"OrganizationalUnitIdentifiers"`
	NodeOUs                       *struct {
		Enable              bool      `yaml:"Enable"`
		ClientOUIdentifier  *ouConfig `yaml:"ClientOUIdentifier"`
		PeerOUIdentifier    *ouConfig `yaml:"PeerOUIdentifier"`
		AdminOUIdentifier   *ouConfig `yaml:"AdminOUIdentifier"`
		OrdererOUIdentifier *ouConfig `yaml:"OrdererOUIdentifier"`
	} `yaml:"NodeOUs"`
}

type ouConfig struct {
	Certificate                  string `yaml:"Certificate"`
	OrganizationalUnitIdentifier string `yaml:"OrganizationalUnitIdentifier"`
}

// LoadLocalMSP sets up the verifying MSP of an MSP directory (see VerifyingMSPConfig) with
// the latest rules, as Fabric sets up a node's local MSP.
func LoadLocalMSP(dir, mspID string) (*MSP, error) {
	conf, err := VerifyingMSPConfig(dir, mspID)
	if err != nil {
		return nil, err
	}
	m, err := New(conf)
	if err != nil {
		return nil, fmt.Errorf("MSP directory %s: %w", dir, err)
	}
	return m, nil
}

// VerifyingMSPConfig reads an MSP directory the way Fabric's configtxgen and local MSP
// loader do and returns the MSPConfig that a channel configuration carries: cacerts
// (required), intermediatecerts, admincerts, crls, tlscacerts, tlsintermediatecerts (read
// only when tlscacerts holds something) and config.yaml (OU identifiers; NodeOUs when
// enabled). Each file contributes its whole content, and files without PEM content are
// skipped, as Fabric does; signcerts and keystore are not part of it.
func VerifyingMSPConfig(dir, mspID string) (*mspproto.MSPConfig, error) {
	if mspID == "" {
		return nil, fmt.Errorf("MSP directory %s: MSP ID is empty", dir)
	}
	fail := func(err error) (*mspproto.MSPConfig, error) {
		return nil, fmt.Errorf("MSP directory %s: %w", dir, err)
	}
	caCerts, err := pemFiles(filepath.Join(dir, dirCACerts), true)
	if err != nil {
		return fail(err)
	}
	if len(caCerts) == 0 {
		return fail(fmt.Errorf("%s holds no PEM certificate", filepath.Join(dir, dirCACerts)))
	}
	fc := &mspproto.FabricMSPConfig{
		Name:      mspID,
		RootCerts: caCerts,
		CryptoConfig: &mspproto.FabricCryptoConfig{
			SignatureHashFamily:            HashFamilySHA2,
			IdentityIdentifierHashFunction: HashSHA256,
		},
	}
	for _, f := range []struct {
		name string
		into *[][]byte
	}{
		{dirAdminCerts, &fc.Admins},
		{dirIntermediateCerts, &fc.IntermediateCerts},
		{dirTLSCACerts, &fc.TlsRootCerts},
		{dirCRLs, &fc.RevocationList},
	} {
		if *f.into, err = pemFiles(filepath.Join(dir, f.name), false); err != nil {
			return fail(err)
		}
	}
	if len(fc.TlsRootCerts) > 0 {
		if fc.TlsIntermediateCerts, err = pemFiles(filepath.Join(dir, dirTLSIntermediateCerts), false); err != nil {
			return fail(err)
		}
	}
	if err := applyConfigYAML(fc, dir); err != nil {
		return fail(err)
	}
	raw, err := proto.Marshal(fc)
	if err != nil {
		return fail(fmt.Errorf("encoding MSP config: %w", err))
	}
	return &mspproto.MSPConfig{Type: TypeFabric, Config: raw}, nil
}

// pemFiles returns the content of every file of dir that holds PEM, in name order.
// Directories (including the ..data links of Kubernetes secret mounts) are skipped. A
// missing directory is an error only when required.
func pemFiles(dir string, required bool) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !required {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out [][]byte
	for _, name := range names {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil || info.IsDir() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if block, _ := pem.Decode(data); block == nil {
			continue
		}
		out = append(out, data)
	}
	return out, nil
}

func applyConfigYAML(fc *mspproto.FabricMSPConfig, dir string) error {
	path := filepath.Join(dir, fileConfig)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var c mspDirConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	for i, ou := range c.OrganizationalUnitIdentifiers {
		if ou == nil {
			return fmt.Errorf("%s: OrganizationalUnitIdentifiers[%d] is empty", path, i)
		}
		certPath := filepath.Join(dir, ou.Certificate)
		cert, err := os.ReadFile(certPath)
		if err != nil {
			return fmt.Errorf("%s: OrganizationalUnitIdentifiers[%d]: reading certificate: %w", path, i, err)
		}
		fc.OrganizationalUnitIdentifiers = append(fc.OrganizationalUnitIdentifiers, &mspproto.FabricOUIdentifier{
			Certificate:                  cert,
			OrganizationalUnitIdentifier: ou.OrganizationalUnitIdentifier,
		})
	}
	n := c.NodeOUs
	if n == nil || !n.Enable {
		return nil
	}
	nodeOUs := &mspproto.FabricNodeOUs{Enable: true}
	for _, e := range []struct {
		from *ouConfig
		into **mspproto.FabricOUIdentifier
	}{
		{n.ClientOUIdentifier, &nodeOUs.ClientOuIdentifier},
		{n.PeerOUIdentifier, &nodeOUs.PeerOuIdentifier},
		{n.AdminOUIdentifier, &nodeOUs.AdminOuIdentifier},
		{n.OrdererOUIdentifier, &nodeOUs.OrdererOuIdentifier},
	} {
		if e.from == nil || e.from.OrganizationalUnitIdentifier == "" {
			continue
		}
		id := &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: e.from.OrganizationalUnitIdentifier}
		if e.from.Certificate != "" {
			// Fabric only warns when a NodeOU certificate cannot be read and leaves the
			// OU unbound to a CA; refusing here would refuse directories Fabric loads.
			if cert, err := os.ReadFile(filepath.Join(dir, e.from.Certificate)); err == nil {
				id.Certificate = cert
			}
		}
		*e.into = id
	}
	fc.FabricNodeOus = nodeOUs
	return nil
}
