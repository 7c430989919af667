package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// The schema is derived from the TopLevel type by reflection, so that the
// struct is the single list of keys: a field added there is at once a YAML
// key, an ORDERER_ variable and a target for ORDERER_<KEY>_FILE.

type kind int

const (
	kindStruct kind = iota
	kindString
	kindBool
	kindInt
	kindUint
	kindSize
	kindDuration
	kindList
	kindPEM
	kindSection
)

type node struct {
	path     string // canonical key path, e.g. "General.TLS.Enabled"
	kind     kind
	index    []int // field index from TopLevel
	bits     int   // integer width for kindInt, kindUint, kindSize
	isPath   bool
	secret   bool
	children map[string]*node // lower-cased key → child, for kindStruct
}

// envTarget is what one ORDERER_ variable name addresses.
type envTarget struct {
	node *node
	file bool // the name ends in _FILE and refers to node through a file
}

type schema struct {
	root *node
	env  map[string]envTarget // upper-cased name without ORDERER_
	// sections maps the upper-cased prefix of a Section, with its trailing
	// underscore ("GENERAL_BCCSP_"), to the section.
	sections map[string]*node
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	pemType      = reflect.TypeFor[PEMSource]()
	sectionType  = reflect.TypeFor[Section]()
)

var loadSchema = sync.OnceValues(func() (*schema, error) {
	s := &schema{env: map[string]envTarget{}, sections: map[string]*node{}}
	root := &node{kind: kindStruct, children: map[string]*node{}}
	if err := s.addFields(root, reflect.TypeFor[TopLevel](), nil); err != nil {
		return nil, fmt.Errorf("config: building the key schema: %w", err)
	}
	s.root = root
	return s, nil
})

func (s *schema) addFields(parent *node, t reflect.Type, index []int) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tags := strings.Split(f.Tag.Get("kord"), ",")
		if !f.IsExported() || tags[0] == "-" {
			continue
		}
		n := &node{
			path:  strings.TrimPrefix(parent.path+"."+f.Name, "."),
			index: append(append([]int(nil), index...), i),
		}
		for _, tg := range tags {
			switch tg {
			case "path":
				n.isPath = true
			case "secret":
				n.secret = true
			}
		}
		size := false
		for _, tg := range tags {
			size = size || tg == "size"
		}
		ft := f.Type
		switch {
		case ft == durationType:
			n.kind = kindDuration
		case ft == pemType:
			n.kind = kindPEM
		case ft == sectionType:
			n.kind = kindSection
		case ft.Kind() == reflect.Struct:
			n.kind = kindStruct
			n.children = map[string]*node{}
			if err := s.addFields(n, ft, n.index); err != nil {
				return err
			}
		case ft.Kind() == reflect.String:
			n.kind = kindString
		case ft.Kind() == reflect.Bool:
			n.kind = kindBool
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
			n.kind, n.bits = kindInt, ft.Bits()
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64 && size:
			n.kind, n.bits = kindSize, ft.Bits()
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64:
			n.kind, n.bits = kindUint, ft.Bits()
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			n.kind = kindList
		default:
			return fmt.Errorf("field %s has unsupported type %s", n.path, ft)
		}
		key := strings.ToLower(f.Name)
		if _, dup := parent.children[key]; dup {
			return fmt.Errorf("two fields named %s", n.path)
		}
		parent.children[key] = n
		if err := s.addEnv(n); err != nil {
			return err
		}
	}
	return nil
}

func (s *schema) addEnv(n *node) error {
	name := envName(n.path)
	add := func(k string, t envTarget) error {
		if prev, dup := s.env[k]; dup {
			return fmt.Errorf("ORDERER_%s names both %s and %s", k, prev.node.path, n.path)
		}
		s.env[k] = t
		return nil
	}
	switch n.kind {
	case kindStruct:
		return nil
	case kindSection:
		s.sections[name+"_"] = n
		return nil
	}
	if err := add(name, envTarget{node: n}); err != nil {
		return err
	}
	return add(name+"_FILE", envTarget{node: n, file: true})
}

// envName turns a key path into the variable name without the ORDERER_
// prefix: General.TLS.Enabled → GENERAL_TLS_ENABLED.
func envName(path string) string {
	return strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// EnvName returns the ORDERER_ variable that overrides the key at path, for
// messages and documentation: EnvName("Kafka.Retry.ShortInterval") is
// "ORDERER_KAFKA_RETRY_SHORTINTERVAL".
func EnvName(path string) string { return "ORDERER_" + envName(path) }

// legacyKeys are Fabric 1.x keys that 2.x dropped. They are reported as
// ignored rather than unknown, so that an operator sees they were recognised.
var legacyKeys = map[string]bool{
	"General.LedgerType":     true,
	"General.GenesisProfile": true,
	"RAMLedger":              true,
}

func legacyEnv(name string) bool {
	return name == "GENERAL_LEDGERTYPE" || name == "GENERAL_GENESISPROFILE" ||
		strings.HasPrefix(name, "RAMLEDGER_")
}
