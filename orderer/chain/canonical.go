package chain

import "google.golang.org/protobuf/encoding/protowire"

// canonicalEnvelope reports whether p is exactly what encoding the Envelope it decodes to
// gives back (field 1 payload, then field 2 signature, each only when non-empty, lengths as
// minimal varints, nothing else), and if so the envelope's size as the block cutter counts it
// (len(payload) + len(signature)). Such a payload can go into a block as it is: decoding and
// re-encoding it, as Fabric does, would produce the same bytes. Anything else (unknown or
// repeated fields, other orders, padded lengths) takes the decode path.
func canonicalEnvelope(p []byte) (uint32, bool) {
	var size uint64
	for _, tag := range []byte{1<<3 | 2, 2<<3 | 2} {
		if len(p) == 0 {
			break
		}
		if p[0] != tag {
			continue
		}
		n, w := protowire.ConsumeVarint(p[1:])
		if w < 0 || w != protowire.SizeVarint(n) || n == 0 || n > uint64(len(p)-1-w) {
			return 0, false
		}
		size += n
		p = p[1+w+int(n):]
	}
	if len(p) != 0 || size > 1<<32-1 {
		return 0, false
	}
	return uint32(size), true
}
