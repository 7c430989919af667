package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"

	"filippo.io/nistec"
)

const (
	window  = 6                           // bits per digit of the scalar
	windows = (256 + window - 1) / window // 43 digits cover a 256-bit scalar
	entries = 1 << (window - 1)           // digits are signed, |d| ≤ 32
	radix   = 1 << window                 // 64
)

// order is the order n of the P-256 group.
var order = elliptic.P256().Params().N

// Table holds t[i][d-1] = d·2^(6i)·Q for one public key Q.
type Table struct {
	t [windows][entries]nistec.P256Point
}

// NewTable precomputes the multiples of pub, which must be a P-256 key on the curve.
func NewTable(pub *ecdsa.PublicKey) (*Table, error) {
	if pub == nil || pub.Curve != elliptic.P256() || pub.X == nil || pub.Y == nil {
		return nil, errors.New("p256: not a P-256 public key")
	}
	if !inRange(pub) {
		return nil, errors.New("p256: public key coordinates out of range")
	}
	var enc [65]byte
	enc[0] = 4 // uncompressed point
	pub.X.FillBytes(enc[1:33])
	pub.Y.FillBytes(enc[33:])
	base, err := nistec.NewP256Point().SetBytes(enc[:])
	if err != nil {
		return nil, err // not on the curve
	}
	tab := new(Table)
	for i := range windows {
		row := &tab.t[i]
		row[0].Set(base)
		for d := 1; d < entries; d++ {
			row[d].Add(&row[d-1], base)
		}
		for range window {
			base.Double(base)
		}
	}
	return tab, nil
}

// inRange: both coordinates fit 32 bytes (on the curve or not: SetBytes checks that).
func inRange(pub *ecdsa.PublicKey) bool {
	return pub.X.Sign() >= 0 && pub.Y.Sign() >= 0 && pub.X.BitLen() <= 256 && pub.Y.BitLen() <= 256
}

// mult returns k·Q for the scalar k (32 bytes, big-endian). The scalar is cut into signed
// base-64 digits, lowest first: a digit above 32 becomes d-64 with a carry into the next.
// k < 2^256, so the top digit (bits 252-255 plus a carry) never exceeds 17.
func (tab *Table) mult(k *[32]byte) *nistec.P256Point {
	acc := nistec.NewP256Point() // the point at infinity
	var neg nistec.P256Point
	carry := 0
	for i := range windows {
		d := digit(k, i*window) + carry
		carry = 0
		if d > entries {
			d -= radix
			carry = 1
		}
		switch {
		case d > 0:
			acc.Add(acc, &tab.t[i][d-1])
		case d < 0:
			acc.Add(acc, neg.Negate(&tab.t[i][-d-1]))
		}
	}
	return acc
}

// digit is bits [lo, lo+6) of the big-endian scalar k, bit 0 being the least significant.
func digit(k *[32]byte, lo int) int {
	v := 0
	for j := range window {
		b := lo + j
		if b >= 256 {
			break
		}
		v |= int(k[31-b/8]>>(b%8)&1) << j
	}
	return v
}

// Verify reports whether (r, s) is a valid signature of hash by the table's key, with the
// result crypto/ecdsa.Verify gives: the hash is cut to its leftmost 256 bits, r and s must
// lie in [1, n-1], and the x coordinate of u1·G + u2·Q, reduced mod n, must equal r.
func (tab *Table) Verify(hash []byte, r, s *big.Int) bool {
	if r == nil || s == nil || r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(order) >= 0 || s.Cmp(order) >= 0 {
		return false
	}
	if len(hash) > 32 {
		hash = hash[:32]
	}
	e := new(big.Int).SetBytes(hash)
	w := new(big.Int).ModInverse(s, order)
	u1 := e.Mul(e, w)
	u1.Mod(u1, order)
	u2 := w.Mul(r, w)
	u2.Mod(u2, order)
	var k1, k2 [32]byte
	u1.FillBytes(k1[:])
	u2.FillBytes(k2[:])
	p, err := nistec.NewP256Point().ScalarBaseMult(k1[:])
	if err != nil {
		return false
	}
	p.Add(p, tab.mult(&k2))
	x, err := p.BytesX()
	if err != nil {
		return false // the point at infinity
	}
	v := new(big.Int).SetBytes(x)
	v.Mod(v, order)
	return v.Cmp(r) == 0
}
