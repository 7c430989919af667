// Package msp owns the orderer's notion of identity: loading the local
// signing identity from a Fabric-layout MSP directory, producing the
// serialized creator and low-S ECDSA signatures that Fabric peers accept,
// and verifying the signatures that clients attach to envelopes.
//
// This is deliberately the small part of a Fabric MSP. Certificate chain
// validation against a channel's root CAs, NodeOU classification, CRLs and
// principal matching belong to the full channel MSP that arrives later; the
// Verifier interface is the seam where it will plug in, so callers written
// against it today need not change.
package msp
