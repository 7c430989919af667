package msgprocessor

import "google.golang.org/protobuf/encoding/protowire"

// CanonicalEnvelope splits b into the payload and signature of the Envelope it encodes when b
// is exactly what encoding that Envelope gives back: field 1 (payload), then field 2
// (signature), each only when non-empty, lengths as minimal varints, nothing else. The two
// slices alias b. Such bytes can be ordered as they came; decoding and re-encoding them, as
// Fabric does, would produce the same bytes. For anything else (unknown or repeated fields,
// another order, padded lengths, truncation) ok is false and the caller decodes.
func CanonicalEnvelope(b []byte) (payload, signature []byte, ok bool) {
	for i, tag := range []byte{1<<3 | 2, 2<<3 | 2} {
		if len(b) == 0 {
			break
		}
		if b[0] != tag {
			continue
		}
		n, w := protowire.ConsumeVarint(b[1:])
		if w < 0 || w != protowire.SizeVarint(n) || n == 0 || n > uint64(len(b)-1-w) {
			return nil, nil, false
		}
		field := b[1+w : 1+w+int(n) : 1+w+int(n)]
		if i == 0 {
			payload = field
		} else {
			signature = field
		}
		b = b[1+w+int(n):]
	}
	if len(b) != 0 {
		return nil, nil, false
	}
	return payload, signature, true
}
