package blockcutter

import (
	"reflect"
	"testing"
)

func msgs(sizes ...uint32) []Message {
	out := make([]Message, len(sizes))
	for i, s := range sizes {
		out[i] = Message{Data: []byte{byte(i)}, Size: s}
	}
	return out
}

// shape reduces batches to their message sizes so that tables stay readable.
func shape(bs []Batch) [][]uint32 {
	var out [][]uint32
	for _, b := range bs {
		var s []uint32
		for _, m := range b {
			s = append(s, m.Size)
		}
		out = append(out, s)
	}
	return out
}

func TestOrderedRules(t *testing.T) {
	lim := Limits{MaxMessageCount: 3, PreferredMaxBytes: 100}
	type step struct {
		size    uint32
		want    [][]uint32
		pending bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"count reached", []step{{10, nil, true}, {10, nil, true}, {10, [][]uint32{{10, 10, 10}}, false}}},
		{"oversized alone, nothing pending", []step{{101, [][]uint32{{101}}, false}}},
		{"oversized cuts pending first", []step{{10, nil, true}, {101, [][]uint32{{10}, {101}}, false}}},
		{"exactly preferred is not oversized", []step{{100, nil, true}}},
		{"pending of exactly preferred is not cut", []step{{60, nil, true}, {40, nil, true}}},
		{"one byte over cuts pending, message kept", []step{{60, nil, true}, {41, [][]uint32{{60}}, true}}},
		{"overflow then count", []step{{60, nil, true}, {30, nil, true}, {20, [][]uint32{{60, 30}}, true}, {1, nil, true}, {1, [][]uint32{{20, 1, 1}}, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(lim)
			for i, s := range tc.steps {
				got, pending := c.Ordered(Message{Size: s.size})
				if !reflect.DeepEqual(shape(got), s.want) || pending != s.pending {
					t.Fatalf("step %d (size %d): got %v pending=%v, want %v pending=%v", i, s.size, shape(got), pending, s.want, s.pending)
				}
			}
		})
	}
}

func TestOverflowThenCountOfOne(t *testing.T) {
	c := New(Limits{MaxMessageCount: 1, PreferredMaxBytes: 100})
	if got, p := c.Ordered(Message{Size: 60}); len(got) != 1 || p {
		t.Fatalf("first message should be cut alone by count, got %v %v", shape(got), p)
	}
	c = New(Limits{MaxMessageCount: 2, PreferredMaxBytes: 100})
	c.Ordered(Message{Size: 60})
	got, p := c.Ordered(Message{Size: 50})
	if !reflect.DeepEqual(shape(got), [][]uint32{{60}}) || !p {
		t.Fatalf("got %v %v", shape(got), p)
	}
}

func TestCutAndPending(t *testing.T) {
	c := New(Limits{MaxMessageCount: 10, PreferredMaxBytes: 1000})
	if b := c.Cut(); b != nil {
		t.Fatalf("empty cut returned %v", b)
	}
	in := msgs(1, 2, 3)
	for _, m := range in {
		c.Ordered(m)
	}
	if c.Pending() != 3 {
		t.Fatalf("pending %d", c.Pending())
	}
	if b := c.Cut(); !reflect.DeepEqual([]Message(b), in) {
		t.Fatalf("cut %v", b)
	}
	if c.Pending() != 0 {
		t.Fatal("pending after cut")
	}
	// After a cut the byte count restarts: 999 fits again.
	if _, p := c.Ordered(Message{Size: 999}); !p {
		t.Fatal("999 bytes should stay pending")
	}
}

func TestZeroMaxMessageCountNeverHolds(t *testing.T) {
	c := New(Limits{MaxMessageCount: 0, PreferredMaxBytes: 100})
	if got, p := c.Ordered(Message{Size: 1}); len(got) != 1 || p {
		t.Fatalf("got %v %v", shape(got), p)
	}
}
