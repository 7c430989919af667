// Package p256 verifies ECDSA P-256 signatures faster for keys that sign again and again,
// with exactly the outcome of crypto/ecdsa.
//
// An orderer verifies one signature per envelope, and nearly all envelopes come from a few
// client identities. Verification computes u1·G + u2·Q for the signer's public key Q;
// crypto/ecdsa has fixed tables for the generator G but must compute u2·Q from scratch
// (256 doublings and about 50 additions), which is two thirds of its cost. For a key seen
// often enough this package keeps a table of the multiples d·2^(6i)·Q (i < 43, d ≤ 32),
// after which u2·Q is at most 43 additions: a verification costs less than half as much.
//
// A table is 43·32 Jacobian points (132 KiB) and takes about 1,400 point operations to
// build (about ten verifications' worth), so Cache builds one only for a key that has
// verified MinUses times, and keeps at most a bounded number of them. Signatures are
// public data, so nothing here needs to be constant-time; the results are compared with
// crypto/ecdsa's in the tests and a fuzz target.
package p256
