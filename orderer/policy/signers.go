package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotSatisfied is matched (errors.Is) by every error an existing policy returns when a
// signature set does not satisfy it.
var ErrNotSatisfied = errors.New("signature set did not satisfy policy")

// ErrNoSuchPolicy is matched by the error of the policy GetPolicy returns for a path that
// names no policy.
var ErrNoSuchPolicy = errors.New("no such policy")

// evaluable is the internal form of every compiled policy. One evaluation of a top-level
// policy walks many of them (an implicit-meta policy visits one policy per sub-group); the
// shared evalState lets them all use the identities extracted once from the signature set.
type evaluable interface {
	check(st *evalState) error
}

// source is the deserializer of one manager tree. Every leaf compiled within the tree points
// to the same source, so an evaluation can cache its identities per source by pointer
// (comparing Deserializer interface values could panic on uncomparable implementations).
type source struct {
	d Deserializer
}

// evalState is the per-call state of one EvaluateSignedData.
type evalState struct {
	signatures []*SignedData
	sets       []*signerSet // one per source met, almost always exactly one
}

// signers returns the identities of the signature set as seen by src, computing them on
// first use. Fabric recomputes them in every signature-policy leaf; the result is the same
// (deserialization and verification are deterministic), only cheaper: a failing leaf of an
// ANY policy no longer costs a second signature verification.
func (st *evalState) signers(src *source) *signerSet {
	for _, s := range st.sets {
		if s.src == src {
			return s
		}
	}
	s := collectSigners(src, st.signatures)
	st.sets = append(st.sets, s)
	return s
}

// signerSet is what remains of a signature set once it is turned into identities.
type signerSet struct {
	src     *source
	total   int
	ids     []Identity
	idx     []int // the index of each of ids in the signature set
	skipped []skippedSig
}

// skippedSig records why a signature did not yield an identity; it is only formatted when an
// evaluation fails.
type skippedSig struct {
	index int
	what  string // "identity", "signature", "duplicate"
	err   error
	dupOf int
}

// collectSigners follows Fabric's rule for turning signatures into identities, in order:
// an identity that does not deserialize is skipped; an identity already accepted from an
// earlier signature is skipped before its signature is checked (so a flood of copies of one
// signature costs one verification); a signature that does not verify is skipped and does not
// mark its identity as seen, so a later good signature by the same identity still counts.
func collectSigners(src *source, sigs []*SignedData) *signerSet {
	s := &signerSet{src: src, total: len(sigs), ids: make([]Identity, 0, len(sigs))}
	var seen map[string]int
	for i, sd := range sigs {
		if sd == nil {
			s.skipped = append(s.skipped, skippedSig{index: i, what: "identity", err: errors.New("nil signed data")})
			continue
		}
		id, err := deserialize(src.d, sd.Identity)
		if err != nil {
			s.skipped = append(s.skipped, skippedSig{index: i, what: "identity", err: err})
			continue
		}
		key := id.Key()
		if j, dup := seen[key]; dup {
			s.skipped = append(s.skipped, skippedSig{index: i, what: "duplicate", dupOf: j})
			continue
		}
		if err := id.Verify(sd.Data, sd.Signature); err != nil {
			s.skipped = append(s.skipped, skippedSig{index: i, what: "signature", err: err})
			continue
		}
		if seen == nil {
			seen = make(map[string]int, len(sigs))
		}
		seen[key] = i
		s.ids = append(s.ids, id)
		s.idx = append(s.idx, i)
	}
	return s
}

func deserialize(d Deserializer, serialized []byte) (Identity, error) {
	if d == nil {
		return nil, errors.New("no identity deserializer")
	}
	id, err := d.DeserializeIdentity(serialized)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, errors.New("deserializer returned no identity")
	}
	return id, nil
}

// maxListed bounds the signers and skipped signatures named in one error, so that a request
// carrying thousands of signatures cannot produce a megabyte of log line.
const maxListed = 8

// describe summarises the signature set for an error message: how many signatures, which
// MSPs the valid ones came from, why the others were skipped.
func (s *signerSet) describe(b *strings.Builder) {
	if s.total == 0 {
		b.WriteString("no signatures")
		return
	}
	fmt.Fprintf(b, "%d signature", s.total)
	if s.total != 1 {
		b.WriteString("s")
	}
	b.WriteString(", valid from [")
	for i, id := range s.ids {
		if i == maxListed {
			fmt.Fprintf(b, " and %d more", len(s.ids)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(id.MSPID())
	}
	b.WriteString("]")
	// A signer whose signature verified but whose identity its MSP does not accept (revoked,
	// no node OU, ...) satisfies no principal, which the rule alone does not explain. Validate
	// is cached by the MSP and only called here, when the message is formatted: the verdict
	// does not depend on it.
	invalid := 0
	for i, id := range s.ids {
		err := id.Validate()
		if err == nil {
			continue
		}
		if invalid == maxListed {
			b.WriteString("; and more invalid identities")
			break
		}
		fmt.Fprintf(b, "; #%d: %v", s.idx[i], err)
		invalid++
	}
	if len(s.skipped) == 0 {
		return
	}
	b.WriteString("; skipped: ")
	for i, sk := range s.skipped {
		if i == maxListed {
			fmt.Fprintf(b, "; and %d more", len(s.skipped)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		switch sk.what {
		case "duplicate":
			fmt.Fprintf(b, "#%d: same identity as #%d", sk.index, sk.dupOf)
		case "signature":
			fmt.Fprintf(b, "#%d: invalid signature: %v", sk.index, sk.err)
		default:
			fmt.Fprintf(b, "#%d: invalid identity: %v", sk.index, sk.err)
		}
	}
}

// notSatisfiedError is the error of a named policy (one GetPolicy or Compile returned).
type notSatisfiedError struct {
	path   string
	reason error
	st     *evalState
}

func (e *notSatisfiedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNotSatisfied.Error())
	if e.path != "" {
		b.WriteString(" ")
		b.WriteString(e.path)
	}
	b.WriteString(": ")
	b.WriteString(e.reason.Error())
	for _, s := range e.st.sets {
		b.WriteString("; ")
		s.describe(&b)
	}
	return b.String()
}

func (e *notSatisfiedError) Is(target error) bool { return target == ErrNotSatisfied }

func (e *notSatisfiedError) Unwrap() error { return e.reason }

// named is a compiled policy together with its path (empty for a standalone policy); it is
// what GetPolicy, Compile and the New*Policy functions return.
type named struct {
	path string
	p    evaluable
}

func (n *named) EvaluateSignedData(signatures []*SignedData) error {
	st := &evalState{signatures: signatures}
	if err := n.p.check(st); err != nil {
		return &notSatisfiedError{path: n.path, reason: err, st: st}
	}
	return nil
}

func (n *named) check(st *evalState) error { return n.p.check(st) }

// String names the policy.
func (n *named) String() string { return n.path }

// rejectPolicy stands for a path that names no policy: it rejects every signature set, as
// Fabric's manager does, so that a caller ignoring GetPolicy's boolean still fails closed.
type rejectPolicy string

func (r rejectPolicy) EvaluateSignedData([]*SignedData) error { return r.err() }

func (r rejectPolicy) check(*evalState) error { return r.err() }

func (r rejectPolicy) err() error { return fmt.Errorf("%w: '%s'", ErrNoSuchPolicy, string(r)) }
