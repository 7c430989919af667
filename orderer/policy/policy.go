// Package policy evaluates Fabric's channel policies: signature policies (NOutOf / SignedBy
// over MSP principals), implicit-meta policies (ANY / ALL / MAJORITY of the same-named policy
// of every sub-group), and the manager that finds a policy by its path in the config tree
// (/Channel/Writers, /Channel/Orderer/BlockValidation, ...). It also owns the two ways a
// request becomes a signature set (EnvelopeSignedData, ConfigUpdateSignedData) and Fabric's
// policy DSL (ParseDSL, FormatDSL), used by tests and tools.
//
// The package knows identities only through the Identity and Deserializer interfaces below;
// orderer/msp implements them from a channel's MSP definitions. Keeping the seam here lets
// policy rules be tested with plain fakes and keeps msp free of policy logic. Evaluation calls
// DeserializeIdentity, Key, Verify and SatisfiesPrincipal, never Validate: as in Fabric, the
// MSP's principal check validates the identity itself (a MEMBER principal is "a valid
// identity of this MSP"). Validate is called only to explain a refusal (a revoked signer).
//
// Verdicts match Fabric v2.5 exactly, quirks included (see rule.eval and implicitMeta.check):
// in a mixed cluster every orderer must accept and refuse the same messages. Only the error
// messages differ, to say which policy failed and which signatures counted.
//
// This package imports no other kord package: it is the inner seam.
package policy

import (
	"time"

	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// SignedData is one signature to evaluate: Identity (a marshalled msp.SerializedIdentity)
// signed Data, producing Signature.
type SignedData struct {
	Data      []byte
	Identity  []byte
	Signature []byte
}

// Identity is a deserialized identity of a channel's MSPs.
type Identity interface {
	// MSPID is the identity's MSP.
	MSPID() string
	// Key identifies the identity uniquely (MSP ID and certificate); signatures by identities
	// with the same key are counted once.
	Key() string
	// Validate checks the identity against its MSP: chains to a root or intermediate CA,
	// not revoked, OU rules.
	Validate() error
	// Verify checks sig over msg with the identity's key (low-S ECDSA, as Fabric).
	Verify(msg, sig []byte) error
	// SatisfiesPrincipal reports, with a reason, whether the identity matches principal.
	SatisfiesPrincipal(principal *mspproto.MSPPrincipal) error
	// ExpiresAt is the identity's certificate NotAfter (zero if it does not expire).
	ExpiresAt() time.Time
}

// Deserializer turns a marshalled SerializedIdentity into an Identity; an unknown MSP ID is
// an error.
type Deserializer interface {
	DeserializeIdentity(serialized []byte) (Identity, error)
}

// Policy decides whether a set of signatures satisfies it; the error says why not.
type Policy interface {
	EvaluateSignedData(signatures []*SignedData) error
}

// Manager finds policies by path: absolute ("/Channel/Application/Writers") or relative to
// the manager's root ("Writers", "Orderer/BlockValidation").
type Manager interface {
	GetPolicy(path string) (Policy, bool)
}

// Well-known policy paths.
const (
	ChannelReaders          = "/Channel/Readers"
	ChannelWriters          = "/Channel/Writers"
	ChannelAdmins           = "/Channel/Admins"
	ChannelOrdererWriters   = "/Channel/Orderer/Writers"
	BlockValidation         = "/Channel/Orderer/BlockValidation"
	ChannelApplicationAdmin = "/Channel/Application/Admins"
)
