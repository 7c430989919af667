// Package msp owns the orderer's notion of identity, with the rules of Fabric's X.509
// MSP (v2.5):
//
//   - MSP: one organization's membership service provider, set up from the MSP value of
//     a channel configuration (root and intermediate CAs, explicit admins, CRLs, OU
//     identifiers, NodeOUs, crypto config, TLS CAs). It deserializes identities and
//     decides whether they are valid members, which node role they have and whether they
//     satisfy an MSP principal. The rules follow the MSP version that the channel
//     capabilities select (v1.0, v1.1, v1.3, v1.4.3), because they change policy outcomes.
//   - Manager: the MSPs of one channel configuration, routing identities by MSP ID, with
//     a bounded cache of deserialized and validated identities. A configuration change
//     builds a new Manager, so cached outcomes never outlive the configuration they were
//     computed under.
//   - Signer and LoadLocalMSP: the local signing identity and MSP of a Fabric MSP
//     directory, with the checks a Fabric node makes at start-up, producing the creator
//     bytes and low-S ECDSA signatures that Fabric peers accept.
//   - SignatureVerifier: signature-only verification of creators without an MSP, for
//     callers that need no membership decision.
//   - Signature checks of both go through a process-wide p256.Cache: a key that keeps
//     signing (a client identity signs nearly every envelope it sends) is verified with
//     precomputed multiples of its public key, at less than half the cost, with verdicts
//     identical to crypto/ecdsa's.
//
// Identities implement policy.Identity and the Manager policy.Deserializer: the policy
// package evaluates signature policies against this package without knowing X.509.
//
// Fabric's behaviours worth knowing when reading the code: chains are built as of the
// certificate's own NotBefore, so certificate expiry is not part of MSP validation (the
// orderer checks creator expiry separately); a certificate that does not chain to the
// MSP's CAs is not an identity at all (deserialization fails); certificates are compared
// after normalising their CA signature to low-S form.
package msp
