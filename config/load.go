package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	// maxConfigFile bounds the orderer.yaml read, so that a path such as
	// /dev/zero fails instead of exhausting memory.
	maxConfigFile = 16 << 20
	// maxValueFile bounds files read through _FILE variables and Kafka TLS
	// File sub-keys: PEM bundles and secrets are small.
	maxValueFile = 4 << 20
	// maxYAMLDepth bounds recursion through nested merge keys.
	maxYAMLDepth = 64
)

// Load finds orderer.yaml (see FindConfigFile) and loads it with the ORDERER_
// variables of environ, which is in os.Environ's KEY=VALUE form. It returns
// the configuration, the warnings (unknown or deprecated keys and variables),
// and an error describing every bad value found.
func Load(environ []string) (*TopLevel, []string, error) {
	path, err := FindConfigFile(environ)
	if err != nil {
		return nil, nil, err
	}
	return LoadFile(path, environ)
}

// FindConfigFile returns the orderer.yaml (or orderer.yml) to use: the one in
// $FABRIC_CFG_PATH when that is set in environ, else the first of ./ and
// /etc/hyperledger/fabric/ that has one.
func FindConfigFile(environ []string) (string, error) {
	dirs := []string{".", "/etc/hyperledger/fabric"}
	where := "FABRIC_CFG_PATH is unset"
	if p := lookupEnv(environ, "FABRIC_CFG_PATH"); p != "" {
		dirs = []string{p}
		where = "from FABRIC_CFG_PATH"
	}
	var tried []string
	for _, dir := range dirs {
		for _, name := range []string{"orderer.yaml", "orderer.yml"} {
			p := filepath.Join(dir, name)
			st, err := os.Stat(p)
			switch {
			case err == nil && !st.IsDir():
				return p, nil
			case err != nil && !errors.Is(err, os.ErrNotExist):
				return "", fmt.Errorf("config: looking for the configuration file: %w", err)
			}
			tried = append(tried, p)
		}
	}
	return "", fmt.Errorf("config: no configuration file found (%s); looked for %s",
		where, strings.Join(tried, ", "))
}

// LoadFile loads the orderer.yaml at path with the ORDERER_ variables of
// environ. Relative paths are resolved against the file's directory, as
// Fabric does.
func LoadFile(path string, environ []string) (*TopLevel, []string, error) {
	data, err := readLimited(path, maxConfigFile)
	if err != nil {
		return nil, nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, warnings, err := load(data, path, dir, environ)
	if c != nil {
		c.SourceFile = path
	}
	return c, warnings, err
}

// LoadYAML loads an orderer.yaml held in memory, such as DefaultYAML, with the
// ORDERER_ variables of environ. Relative paths are resolved against baseDir,
// or left as they are when baseDir is empty.
func LoadYAML(data []byte, baseDir string, environ []string) (*TopLevel, []string, error) {
	return load(data, "orderer.yaml", baseDir, environ)
}

func load(data []byte, file, baseDir string, environ []string) (*TopLevel, []string, error) {
	s, err := loadSchema()
	if err != nil {
		return nil, nil, err
	}
	c := Defaults()
	l := &loader{file: file, origin: map[string]string{}, raw: map[string]string{}, fromEnv: map[string]bool{}}
	root := reflect.ValueOf(c).Elem()

	doc, err := decodeYAML(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config: parsing %s: %w", file, err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		l.yamlNode(root, s.root, doc.Content[0], 0)
	}
	l.applyEnv(root, s, environ)
	if len(l.errs) > 0 {
		return nil, l.warnings, errors.Join(l.errs...)
	}
	l.finish(c, baseDir)
	if len(l.errs) > 0 {
		return nil, l.warnings, errors.Join(l.errs...)
	}
	if err := c.validate(l.display, l.rawValue); err != nil {
		return nil, l.warnings, err
	}
	return c, l.warnings, nil
}

// decodeYAML parses data into a node tree. The recover turns a panic inside
// the YAML library on hostile input into an error, because a configuration
// file must never crash the orderer.
func decodeYAML(data []byte) (doc yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML: %v", r)
		}
	}()
	err = yaml.Unmarshal(data, &doc)
	return doc, err
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// loader carries the state of one load: where each key was last set (for
// messages), the warnings and the errors so far.
type loader struct {
	file     string
	origin   map[string]string // key path → where it was last set
	raw      map[string]string // key path → the text it was set from
	fromEnv  map[string]bool   // key path → last set by a variable
	warnings []string
	errs     []error
}

// set records that the key at path was set from text at where.
func (l *loader) set(path, where, text string, env bool) {
	l.origin[path] = where
	l.raw[path] = text
	l.fromEnv[path] = env
}

func (l *loader) warnf(format string, args ...any) {
	l.warnings = append(l.warnings, "config: "+fmt.Sprintf(format, args...))
}

// fail records a bad value. where names the setting (a variable, or
// file:line and key path); value is shown quoted unless secret.
func (l *loader) fail(where, value string, secret bool, problem error) {
	l.errs = append(l.errs, fmt.Errorf("config: %s=%s: %w", where, showValue(value, secret), problem))
}

func showValue(v string, secret bool) string {
	if secret {
		return "<redacted>"
	}
	const max = 200
	if len(v) > max {
		return strconv.Quote(v[:max]) + "..."
	}
	return strconv.Quote(v)
}

// display names the setting at path for messages: the variable or file
// position it came from, or the bare path for a default.
func (l *loader) display(path string) string {
	if o, ok := l.origin[path]; ok {
		return o
	}
	return path
}

func (l *loader) rawValue(path string) (string, bool) {
	v, ok := l.raw[path]
	return v, ok
}

func (l *loader) at(y *yaml.Node, path string) string {
	return fmt.Sprintf("%s:%d: %s", l.file, y.Line, path)
}

func isNull(y *yaml.Node) bool {
	return y.Kind == yaml.ScalarNode && y.ShortTag() == "!!null"
}

func deref(y *yaml.Node) *yaml.Node {
	for i := 0; i < maxYAMLDepth && y != nil && y.Kind == yaml.AliasNode; i++ {
		y = y.Alias
	}
	return y
}

func describe(y *yaml.Node) string {
	switch y.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a value"
	}
}

// yamlNode applies the YAML value y to the setting n of cfg. An empty value
// (`Key:` or `Key: ""`) leaves the setting at its default, as in Fabric,
// whose sample file lists keys without values.
func (l *loader) yamlNode(cfg reflect.Value, n *node, y *yaml.Node, depth int) {
	y = deref(y)
	if y == nil || isNull(y) {
		return
	}
	if depth > maxYAMLDepth || y.Kind == yaml.AliasNode {
		l.errs = append(l.errs, fmt.Errorf("config: %s: nested too deeply", l.at(y, n.path)))
		return
	}
	switch n.kind {
	case kindStruct:
		l.yamlStruct(cfg, n, y, depth)
	case kindSection:
		var tree any
		if err := decodeSubtree(y, &tree); err != nil {
			l.errs = append(l.errs, fmt.Errorf("config: %s: %w", l.at(y, n.path), err))
			return
		}
		sec := cfg.FieldByIndex(n.index).Addr().Interface().(*Section)
		sec.Tree = tree
		l.set(n.path, l.at(y, n.path), "", false)
	case kindPEM:
		l.yamlPEM(cfg, n, y)
	case kindList:
		l.yamlList(cfg, n, y)
	default:
		if y.Kind != yaml.ScalarNode {
			l.errs = append(l.errs, fmt.Errorf("config: %s: expected a single value, found %s", l.at(y, n.path), describe(y)))
			return
		}
		if y.Value == "" {
			return
		}
		if err := setValue(cfg, n, y.Value); err != nil {
			l.fail(l.at(y, n.path), y.Value, n.secret, err)
			return
		}
		l.set(n.path, l.at(y, n.path), y.Value, false)
	}
}

func decodeSubtree(y *yaml.Node, out *any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML: %v", r)
		}
	}()
	return y.Decode(out)
}

func (l *loader) yamlStruct(cfg reflect.Value, n *node, y *yaml.Node, depth int) {
	if y.Kind != yaml.MappingNode {
		l.errs = append(l.errs, fmt.Errorf("config: %s: expected a mapping, found %s", l.at(y, displayPath(n.path)), describe(y)))
		return
	}
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		if k.ShortTag() == "!!merge" {
			l.yamlMerge(cfg, n, v, depth+1)
			continue
		}
		key := strings.TrimPrefix(n.path+"."+k.Value, ".")
		child := n.children[strings.ToLower(k.Value)]
		switch {
		case child != nil:
			l.yamlNode(cfg, child, v, depth+1)
		case legacyKeys[key]:
			l.warnf("%s is a Fabric 1.x key that kord ignores", l.at(k, key))
		default:
			l.warnf("%s: unknown key (ignored)", l.at(k, key))
		}
	}
}

// yamlMerge applies a YAML merge key (`<<: *anchor`), whose value is one
// mapping or a list of them.
func (l *loader) yamlMerge(cfg reflect.Value, n *node, v *yaml.Node, depth int) {
	v = deref(v)
	if v == nil || depth > maxYAMLDepth {
		return
	}
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			l.yamlNode(cfg, n, item, depth+1)
		}
		return
	}
	l.yamlNode(cfg, n, v, depth+1)
}

func displayPath(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func (l *loader) yamlList(cfg reflect.Value, n *node, y *yaml.Node) {
	f := cfg.FieldByIndex(n.index)
	switch y.Kind {
	case yaml.ScalarNode:
		f.Set(reflect.ValueOf(parseList(y.Value)))
	case yaml.SequenceNode:
		var items []string
		for _, item := range y.Content {
			item = deref(item)
			if item == nil || isNull(item) {
				continue
			}
			if item.Kind != yaml.ScalarNode {
				l.errs = append(l.errs, fmt.Errorf("config: %s: list items must be single values, found %s", l.at(item, n.path), describe(item)))
				return
			}
			items = append(items, item.Value)
		}
		f.Set(reflect.ValueOf(items))
	default:
		l.errs = append(l.errs, fmt.Errorf("config: %s: expected a list, found %s", l.at(y, n.path), describe(y)))
		return
	}
	l.set(n.path, l.at(y, n.path), y.Value, false)
}

// yamlPEM reads a Kafka TLS credential: inline PEM text, a list of PEM texts
// (Fabric's RootCAs), or a mapping with a File key.
func (l *loader) yamlPEM(cfg reflect.Value, n *node, y *yaml.Node) {
	p := cfg.FieldByIndex(n.index).Addr().Interface().(*PEMSource)
	switch y.Kind {
	case yaml.ScalarNode:
		if y.Value == "" {
			return
		}
		*p = PEMSource{PEM: y.Value}
	case yaml.SequenceNode:
		var blocks []string
		for _, item := range y.Content {
			item = deref(item)
			if item == nil || isNull(item) {
				continue
			}
			if item.Kind != yaml.ScalarNode {
				l.errs = append(l.errs, fmt.Errorf("config: %s: list items must be PEM text, found %s", l.at(item, n.path), describe(item)))
				return
			}
			blocks = append(blocks, item.Value)
		}
		*p = PEMSource{PEM: strings.Join(blocks, "\n")}
	case yaml.MappingNode:
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], deref(y.Content[i+1])
			key := n.path + "." + k.Value
			if !strings.EqualFold(k.Value, "File") {
				l.warnf("%s: unknown key (ignored)", l.at(k, key))
				continue
			}
			if v == nil || isNull(v) {
				continue
			}
			if v.Kind != yaml.ScalarNode {
				l.errs = append(l.errs, fmt.Errorf("config: %s: expected a file name, found %s", l.at(v, key), describe(v)))
				return
			}
			if v.Value != "" {
				*p = PEMSource{File: v.Value}
			}
		}
	}
	l.set(n.path, l.at(y, n.path), "", false)
}

// setValue parses raw as the value of the leaf n and stores it in cfg.
func setValue(cfg reflect.Value, n *node, raw string) error {
	f := cfg.FieldByIndex(n.index)
	switch n.kind {
	case kindString:
		f.SetString(raw)
	case kindBool:
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case kindInt:
		v, err := parseInt(raw, n.bits)
		if err != nil {
			return err
		}
		f.SetInt(v)
	case kindUint:
		v, err := parseUint(raw, n.bits)
		if err != nil {
			return err
		}
		f.SetUint(v)
	case kindSize:
		v, err := parseSize(raw, n.bits)
		if err != nil {
			return err
		}
		f.SetUint(v)
	case kindDuration:
		d, err := parseDuration(raw)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case kindList:
		f.Set(reflect.ValueOf(parseList(raw)))
	case kindPEM:
		f.Set(reflect.ValueOf(PEMSource{PEM: envPEM(raw)}))
	default:
		return fmt.Errorf("%s cannot be set from a single value", n.path)
	}
	return nil
}

// envPEM accepts PEM text as environments deliver it: with real newlines,
// with literal \n sequences (env files cannot hold newlines), or as Fabric's
// list notation of several PEM texts.
func envPEM(raw string) string {
	t := strings.TrimSpace(raw)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		return strings.Join(parseList(t), "\n")
	}
	if !strings.Contains(raw, "\n") && strings.Contains(raw, `\n`) {
		return strings.ReplaceAll(raw, `\n`, "\n")
	}
	return raw
}

// applyEnv overlays the ORDERER_ variables of environ. The first occurrence
// of a name wins, as with os.Getenv, and an empty value counts as unset, as
// in Fabric.
func (l *loader) applyEnv(cfg reflect.Value, s *schema, environ []string) {
	type hit struct {
		name, value string
		t           envTarget
	}
	seen := map[string]bool{}
	var hits []hit
	perNode := map[*node][]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		up := strings.ToUpper(k)
		rest, ok := strings.CutPrefix(up, "ORDERER_")
		if !ok || seen[up] {
			continue
		}
		seen[up] = true
		if t, ok := s.env[rest]; ok {
			if v != "" {
				hits = append(hits, hit{k, v, t})
				perNode[t.node] = append(perNode[t.node], k)
			}
			continue
		}
		if l.sectionEnv(cfg, s, rest, v) {
			continue
		}
		if legacyEnv(rest) {
			l.warnf("%s is a Fabric 1.x setting that kord ignores", k)
			continue
		}
		l.warnf("unknown variable %s (ignored)", k)
	}
	for _, h := range hits {
		if names := perNode[h.t.node]; len(names) > 1 {
			if names[0] == h.name {
				l.errs = append(l.errs, fmt.Errorf("config: %s and %s both set %s; keep one",
					names[0], names[1], h.t.node.path))
			}
			continue
		}
		l.envValue(cfg, h.t, h.name, h.value)
	}
}

func (l *loader) sectionEnv(cfg reflect.Value, s *schema, rest, value string) bool {
	for prefix, n := range s.sections {
		sub, ok := strings.CutPrefix(rest, prefix)
		if !ok || sub == "" {
			continue
		}
		if value != "" {
			sec := cfg.FieldByIndex(n.index).Addr().Interface().(*Section)
			if sec.Env == nil {
				sec.Env = map[string]string{}
			}
			sec.Env[sub] = value
		}
		return true
	}
	return false
}

// envValue applies one variable. A _FILE variable names a file: for Kafka
// TLS credentials it sets the File sub-key, for settings that are paths it
// is the path, and for any other setting the value is read from the file.
func (l *loader) envValue(cfg reflect.Value, t envTarget, name, value string) {
	n := t.node
	raw := value
	switch {
	case t.file && n.kind == kindPEM:
		cfg.FieldByIndex(n.index).Set(reflect.ValueOf(PEMSource{File: strings.TrimSpace(value)}))
		l.set(n.path, name, value, true)
		return
	case t.file && n.isPath && n.kind == kindList:
		cfg.FieldByIndex(n.index).Set(reflect.ValueOf([]string{strings.TrimSpace(value)}))
		l.set(n.path, name, value, true)
		return
	case t.file && n.isPath:
		raw = strings.TrimSpace(value)
	case t.file:
		data, err := readLimited(value, maxValueFile)
		if err != nil {
			l.fail(name, value, false, fmt.Errorf("reading the value: %w", err))
			return
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if err := setValue(cfg, n, raw); err != nil {
			l.fail(name, value, false, fmt.Errorf("file content: %w", err))
			return
		}
		l.set(n.path, name, value, true)
		return
	case n.kind == kindString && !n.secret:
		// list-form compose entries (- KEY="v") keep their quotes; no MSP
		// ID, address or path legitimately has them.
		raw = unquote(value)
	}
	if err := setValue(cfg, n, raw); err != nil {
		l.fail(name, value, n.secret, err)
		return
	}
	l.set(n.path, name, value, true)
}

// finish applies what Fabric does after reading: the 1.x names, path
// resolution, and loading Kafka TLS files.
func (l *loader) finish(c *TopLevel, baseDir string) {
	g := &c.General
	l.legacyName(&g.BootstrapMethod, g.GenesisMethod, "General.BootstrapMethod", "General.GenesisMethod")
	l.legacyName(&g.BootstrapFile, g.GenesisFile, "General.BootstrapFile", "General.GenesisFile")
	g.BootstrapMethod = strings.ToLower(strings.TrimSpace(g.BootstrapMethod))
	c.Metrics.Provider = strings.ToLower(strings.TrimSpace(c.Metrics.Provider))
	if v, err := ParseKafkaVersion(c.Kafka.Version); err == nil {
		c.Kafka.Version = v.String()
	}

	if baseDir != "" {
		for _, p := range []*string{
			&g.TLS.PrivateKey, &g.TLS.Certificate,
			&g.Cluster.ClientCertificate, &g.Cluster.ClientPrivateKey,
			&g.BootstrapFile, &g.LocalMSPDir, &c.FileLedger.Location,
		} {
			*p = resolve(baseDir, *p)
		}
		for _, list := range [][]string{g.TLS.RootCAs, g.TLS.ClientRootCAs, g.Cluster.RootCAs} {
			for i := range list {
				list[i] = resolve(baseDir, list[i])
			}
		}
	}

	if c.Kafka.TLS.Enabled {
		for _, k := range []struct {
			path string
			src  *PEMSource
		}{
			{"Kafka.TLS.PrivateKey", &c.Kafka.TLS.PrivateKey},
			{"Kafka.TLS.Certificate", &c.Kafka.TLS.Certificate},
			{"Kafka.TLS.RootCAs", &c.Kafka.TLS.RootCAs},
		} {
			if k.src.File == "" {
				continue
			}
			data, err := readLimited(k.src.File, maxValueFile)
			if err != nil {
				l.fail(fileKey(l.display(k.path)), k.src.File, false, fmt.Errorf("reading the PEM file: %w", err))
				continue
			}
			k.src.PEM = string(data)
		}
	}
}

// legacyName resolves a Fabric 1.x name against its 2.x name. The old name
// is used when the new one is not set, or when the old one comes from the
// environment and the new one only from the file, so that the environment
// still wins over the file.
func (l *loader) legacyName(dst *string, old, newPath, oldPath string) {
	oldOrigin, oldSet := l.origin[oldPath]
	if !oldSet || old == "" {
		return
	}
	_, newSet := l.origin[newPath]
	if !newSet || (l.fromEnv[oldPath] && !l.fromEnv[newPath]) {
		l.warnf("%s is deprecated, use %s (%s); taking its value %q", oldOrigin, newPath, EnvName(newPath), old)
		*dst = old
		l.set(newPath, oldOrigin, l.raw[oldPath], l.fromEnv[oldPath])
		return
	}
	if *dst != old {
		l.warnf("%s is deprecated and ignored: %s is set", oldOrigin, l.display(newPath))
		return
	}
	l.warnf("%s is deprecated, use %s (%s)", oldOrigin, newPath, EnvName(newPath))
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}
