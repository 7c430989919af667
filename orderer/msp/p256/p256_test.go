package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
)

func newKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, k *ecdsa.PrivateKey, hash []byte) (*big.Int, *big.Int) {
	t.Helper()
	r, s, err := ecdsa.Sign(rand.Reader, k, hash)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// cases are (hash, r, s) triples around one valid signature: the valid one, and each part
// changed in the ways that matter to a verifier.
func cases(t testing.TB, k *ecdsa.PrivateKey, hash []byte) [][3]any {
	r, s := sign(t, k, hash)
	add := func(x *big.Int, d int64) *big.Int { return new(big.Int).Add(x, big.NewInt(d)) }
	n := order
	other := append([]byte(nil), hash...)
	if len(other) > 0 {
		other[len(other)-1] ^= 1
	} else {
		other = []byte{1}
	}
	return [][3]any{
		{hash, r, s},
		{other, r, s},
		{hash, add(r, 1), s},
		{hash, r, add(s, 1)},
		{hash, r, new(big.Int).Sub(n, s)}, // the high-S twin: valid for crypto/ecdsa
		{hash, big.NewInt(0), s},
		{hash, r, big.NewInt(0)},
		{hash, new(big.Int).Set(n), s},
		{hash, r, new(big.Int).Set(n)},
		{hash, new(big.Int).Add(r, n), s},
		{hash, big.NewInt(-1), s},
		{hash, s, r},
	}
}

// TestVerifyMatchesECDSA: the table's verdict is crypto/ecdsa's, for valid signatures, every
// kind of broken one, and hashes shorter and longer than the 32-byte order.
func TestVerifyMatchesECDSA(t *testing.T) {
	hashes := [][]byte{nil, {0}, make([]byte, 20), make([]byte, 32), make([]byte, 48), make([]byte, 64)}
	for i := range 25 {
		k := newKey(t, elliptic.P256())
		tab, err := NewTable(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hashes {
			h = append([]byte(nil), h...)
			_, _ = rand.Read(h)
			if i == 0 && j == 3 {
				// e = n: u1 = 0, so u1·G is the point at infinity.
				h = order.FillBytes(make([]byte, 32))
			}
			for c, tc := range cases(t, k, h) {
				hash, r, s := tc[0].([]byte), tc[1].(*big.Int), tc[2].(*big.Int)
				want := ecdsa.Verify(&k.PublicKey, hash, r, s)
				if got := tab.Verify(hash, r, s); got != want {
					t.Fatalf("key %d, hash of %d bytes, case %d: table says %v, crypto/ecdsa %v", i, len(hash), c, got, want)
				}
				if c == 0 && !want {
					t.Fatalf("case 0 must be a valid signature")
				}
			}
		}
	}
}

// TestMultEdgeScalars: k·Q for scalars whose digits all carry, the largest scalars, and
// zero, against crypto/ecdsa's own arithmetic through a valid signature of each shape.
func TestMultEdgeScalars(t *testing.T) {
	k := newKey(t, elliptic.P256())
	tab, err := NewTable(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c := elliptic.P256()
	for _, hexScalar := range []string{
		"0", "1", "20", "21", "3f", "40", "7fffffff",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550", // n-1
		"8420842084208420842084208420842084208420842084208420842084208420",
		"2108421084210842108421084210842108421084210842108421084210842108",
	} {
		v, _ := new(big.Int).SetString(hexScalar, 16)
		var kb [32]byte
		v.FillBytes(kb[:])
		got := tab.mult(&kb)
		wx, wy := c.ScalarMult(k.X, k.Y, kb[:])
		if v.Sign() == 0 || new(big.Int).Mod(v, order).Sign() == 0 {
			if got.IsInfinity() != 1 {
				t.Errorf("%s·Q is not the point at infinity", hexScalar)
			}
			continue
		}
		want := elliptic.Marshal(c, wx, wy)
		if g := got.Bytes(); string(g) != string(want) {
			t.Errorf("%s·Q differs from crypto/elliptic's", hexScalar)
		}
	}
}

func TestNewTableRefuses(t *testing.T) {
	p384 := newKey(t, elliptic.P384())
	good := newKey(t, elliptic.P256())
	off := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Set(good.X), Y: new(big.Int).Add(good.Y, big.NewInt(1))}
	big257 := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Lsh(big.NewInt(1), 256), Y: good.Y}
	for name, pub := range map[string]*ecdsa.PublicKey{
		"nil": nil, "P-384": &p384.PublicKey, "off the curve": off, "x of 257 bits": big257,
		"no coordinates": {Curve: elliptic.P256()},
	} {
		if _, err := NewTable(pub); err == nil {
			t.Errorf("%s: table built", name)
		}
	}
}

// TestCache: a key gets a table at its MinUses-th valid signature, failures do not count,
// other curves and odd keys are verified by crypto/ecdsa, and the keys kept are bounded.
func TestCache(t *testing.T) {
	c := NewCache(4, 3)
	k := newKey(t, elliptic.P256())
	h := sha256.Sum256([]byte("m"))
	r, s := sign(t, k, h[:])
	bad := new(big.Int).Add(s, big.NewInt(1))
	for range 5 {
		if c.Verify(&k.PublicKey, h[:], r, bad) {
			t.Fatal("bad signature accepted")
		}
	}
	if c.Tables() != 0 {
		t.Fatal("refused signatures built a table")
	}
	for i := range 3 {
		if !c.Verify(&k.PublicKey, h[:], r, s) {
			t.Fatal("good signature refused")
		}
		if want := map[bool]int{true: 1, false: 0}[i == 2]; c.Tables() != want {
			t.Fatalf("after %d good signatures: %d tables", i+1, c.Tables())
		}
	}
	if !c.Verify(&k.PublicKey, h[:], r, s) || c.Verify(&k.PublicKey, h[:], r, bad) || c.Verify(&k.PublicKey, h[:], nil, s) {
		t.Fatal("table verdicts wrong")
	}

	k384 := newKey(t, elliptic.P384())
	r384, s384 := sign(t, k384, h[:])
	if !c.Verify(&k384.PublicKey, h[:], r384, s384) || c.Verify(&k384.PublicKey, h[:], r384, new(big.Int).Add(s384, big.NewInt(1))) {
		t.Fatal("P-384 verdicts wrong")
	}
	huge := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Lsh(big.NewInt(1), 300), Y: k.Y}
	if c.Verify(huge, h[:], r, s) || c.Verify(nil, h[:], r, s) {
		t.Fatal("odd keys accepted")
	}

	for range 20 {
		o := newKey(t, elliptic.P256())
		or, os := sign(t, o, h[:])
		for range 3 {
			if !c.Verify(&o.PublicKey, h[:], or, os) {
				t.Fatal("good signature refused")
			}
		}
	}
	c.mu.Lock()
	keys := len(c.cur) + len(c.old)
	c.mu.Unlock()
	if keys > 4 || c.Tables() > 4 {
		t.Fatalf("%d keys and %d tables kept, bound 4", keys, c.Tables())
	}
}

// FuzzVerify: for any hash and any r, s near or far from a valid signature, the table and
// crypto/ecdsa agree.
func FuzzVerify(f *testing.F) {
	keys := make([]*ecdsa.PrivateKey, 3)
	tabs := make([]*Table, 3)
	for i := range keys {
		keys[i] = newKey(f, elliptic.P256())
		var err error
		if tabs[i], err = NewTable(&keys[i].PublicKey); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(uint8(0), []byte("hash"), []byte(nil), []byte(nil), uint16(0))
	f.Add(uint8(1), make([]byte, 32), []byte{1}, []byte{1}, uint16(7))
	f.Add(uint8(2), make([]byte, 64), []byte(nil), []byte{0xff, 0xff}, uint16(300))
	f.Fuzz(func(t *testing.T, which uint8, hash, rb, sb []byte, flip uint16) {
		i := int(which) % len(keys)
		r, s := sign(t, keys[i], hash)
		if len(rb) > 0 {
			r = new(big.Int).SetBytes(rb)
		}
		if len(sb) > 0 {
			s = new(big.Int).SetBytes(sb)
		}
		if flip != 0 {
			// Flip one bit of r or s (bit flip%256 of s when flip ≥ 256·128).
			if flip&0x8000 != 0 {
				s = new(big.Int).Xor(s, new(big.Int).Lsh(big.NewInt(1), uint(flip%256)))
			} else {
				r = new(big.Int).Xor(r, new(big.Int).Lsh(big.NewInt(1), uint(flip%256)))
			}
		}
		want := ecdsa.Verify(&keys[i].PublicKey, hash, r, s)
		if got := tabs[i].Verify(hash, r, s); got != want {
			t.Fatalf("table %v, crypto/ecdsa %v (hash %x, r %x, s %x)", got, want, hash, r, s)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	k := newKey(b, elliptic.P256())
	h := sha256.Sum256([]byte("envelope"))
	r, s := sign(b, k, h[:])
	tab, err := NewTable(&k.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	c := NewCache(0, 0)
	for _, impl := range []struct {
		name   string
		verify func() bool
	}{
		{"crypto-ecdsa", func() bool { return ecdsa.Verify(&k.PublicKey, h[:], r, s) }},
		{"table", func() bool { return tab.Verify(h[:], r, s) }},
		{"cache", func() bool { return c.Verify(&k.PublicKey, h[:], r, s) }},
	} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			for b.Loop() {
				if !impl.verify() {
					b.Fatal("refused")
				}
			}
		})
	}
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewTable(&k.PublicKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}
