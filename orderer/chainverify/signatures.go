package chainverify

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/policy"
)

// OrdererOrgSignatures is the default SignatureCheck: at least one signature must be by an
// identity of an orderer organization of the channel config in force (its MSP ID is an
// orderer org's, and its certificate chains to that MSP's root or intermediate CAs), and the
// ECDSA signature must verify (low-S, as Fabric). This is what Fabric's default
// BlockValidation policy (ANY Writers of the orderer orgs) amounts to for chains written by
// orderers of those orgs; a check that evaluates the channel's actual policy can replace it
// (Options.SignatureCheck).
//
// Certificate validity periods are not checked, so that old chains signed by since-expired
// certificates still verify.
func OrdererOrgSignatures(cfg *channelconfig.Values, b *cb.Block, sigs []*policy.SignedData) error {
	return defaultOrgCheck.check(cfg, b, sigs)
}

var defaultOrgCheck = &orgCheck{cache: map[*channelconfig.Values]*ordererMSPs{}}

type orgCheck struct {
	mu    sync.Mutex
	cache map[*channelconfig.Values]*ordererMSPs
	v     msp.SignatureVerifier
}

// ordererMSPs are the orderer organizations of one config.
type ordererMSPs struct {
	byID map[string]*x509.VerifyOptions
	err  error
}

func (c *orgCheck) msps(cfg *channelconfig.Values) (*ordererMSPs, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.cache[cfg]
	if !ok {
		if len(c.cache) > 64 {
			clear(c.cache)
		}
		m = &ordererMSPs{}
		m.byID, m.err = OrdererMSPs(cfg.Config)
		c.cache[cfg] = m
	}
	return m, m.err
}

func (c *orgCheck) check(cfg *channelconfig.Values, _ *cb.Block, sigs []*policy.SignedData) error {
	if len(sigs) == 0 {
		return errors.New("the block carries no signature")
	}
	orgs, err := c.msps(cfg)
	if err != nil {
		return err
	}
	var reasons []string
	for i, s := range sigs {
		if err := c.one(orgs, s); err != nil {
			reasons = append(reasons, fmt.Sprintf("signature %d: %v", i, err))
			continue
		}
		return nil
	}
	return fmt.Errorf("no valid signature by an orderer organization (%s)", strings.Join(reasons, "; "))
}

func (c *orgCheck) one(orgs *ordererMSPs, s *policy.SignedData) error {
	id, err := c.v.DeserializeIdentity(s.Identity)
	if err != nil {
		return err
	}
	opts, ok := orgs.byID[id.MSPID]
	if !ok {
		known := make([]string, 0, len(orgs.byID))
		for k := range orgs.byID {
			known = append(known, k)
		}
		sort.Strings(known)
		return fmt.Errorf("signer %s is not of an orderer organization (orderer MSPs: %s)", id, strings.Join(known, ", "))
	}
	vo := *opts
	vo.CurrentTime = id.Certificate.NotBefore.Add(time.Second)
	if _, err := id.Certificate.Verify(vo); err != nil {
		return fmt.Errorf("signer %s: certificate does not chain to MSP %s's CAs: %w", id, id.MSPID, err)
	}
	return msp.VerifyWithIdentity(id, s.Data, s.Signature)
}

// OrdererMSPs reads the MSPs of the orderer organizations of a config tree: MSP ID → the
// options that verify a certificate against that MSP's root and intermediate CAs.
func OrdererMSPs(c *cb.Config) (map[string]*x509.VerifyOptions, error) {
	ord := c.GetChannelGroup().GetGroups()[channelconfig.OrdererGroup]
	if ord == nil {
		return nil, errors.New("config has no Orderer group")
	}
	out := map[string]*x509.VerifyOptions{}
	for name, org := range ord.Groups {
		v, ok := org.Values["MSP"]
		if !ok {
			return nil, fmt.Errorf("orderer organization %s has no MSP value", name)
		}
		mc := &mspproto.MSPConfig{}
		if err := proto.Unmarshal(v.Value, mc); err != nil {
			return nil, fmt.Errorf("orderer organization %s: MSP value: %w", name, err)
		}
		fc := &mspproto.FabricMSPConfig{}
		if err := proto.Unmarshal(mc.Config, fc); err != nil {
			return nil, fmt.Errorf("orderer organization %s: MSP config: %w", name, err)
		}
		roots, err := certPool(fc.RootCerts)
		if err != nil {
			return nil, fmt.Errorf("orderer organization %s (MSP %s): root CAs: %w", name, fc.Name, err)
		}
		inter, err := certPool(fc.IntermediateCerts)
		if err != nil {
			return nil, fmt.Errorf("orderer organization %s (MSP %s): intermediate CAs: %w", name, fc.Name, err)
		}
		out[fc.Name] = &x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	}
	if len(out) == 0 {
		return nil, errors.New("config has no orderer organization")
	}
	return out, nil
}

func certPool(pems [][]byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for i, p := range pems {
		rest := p
		found := false
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %d: %w", i, err)
			}
			pool.AddCert(cert)
			found = true
		}
		if !found {
			return nil, fmt.Errorf("certificate %d is not PEM", i)
		}
	}
	return pool, nil
}
