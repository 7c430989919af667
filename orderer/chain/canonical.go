package chain

import "github.com/kordhq/kord/orderer/msgprocessor"

// canonicalEnvelope reports whether p is the canonical encoding of an Envelope (see
// msgprocessor.CanonicalEnvelope), and if so the envelope's size as the block cutter counts
// it (len(payload) + len(signature)). Such a payload goes into a block as it is.
func canonicalEnvelope(p []byte) (uint32, bool) {
	payload, sig, ok := msgprocessor.CanonicalEnvelope(p)
	size := uint64(len(payload)) + uint64(len(sig))
	if !ok || size > 1<<32-1 {
		return 0, false
	}
	return uint32(size), true
}
