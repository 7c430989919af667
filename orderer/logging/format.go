package logging

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultFormat is Fabric's default console format without its colour codes.
const DefaultFormat = "%{time:2006-01-02 15:04:05.000 MST} %{id:04x} %{level:.4s} [%{module}] %{shortfunc} -> %{message}"

// entry is one record with everything an encoder needs.
type entry struct {
	rec   slog.Record
	name  string
	attrs []slog.Attr
	seq   uint64
}

type encoder struct {
	kind  string // "console", "json", "logfmt"
	parts []part // console only
}

// part is a piece of a console format: literal text, or a verb with its argument.
type part struct {
	lit  string
	verb string
	arg  string
}

var verbRE = regexp.MustCompile(`%{(color|id|level|message|module|shortfunc|time)(?::(.*?))?}`)

func newEncoder(format string) (*encoder, error) {
	switch format {
	case "json", "logfmt":
		return &encoder{kind: format}, nil
	case "":
		format = DefaultFormat
	}
	e := &encoder{kind: "console"}
	pos := 0
	for _, m := range verbRE.FindAllStringSubmatchIndex(format, -1) {
		if m[0] > pos {
			e.parts = append(e.parts, part{lit: format[pos:m[0]]})
		}
		p := part{verb: format[m[2]:m[3]]}
		if m[4] >= 0 {
			p.arg = format[m[4]:m[5]]
		}
		switch p.verb {
		case "color":
			if p.arg != "" && p.arg != "reset" && p.arg != "bold" {
				return nil, fmt.Errorf("unknown color %q (want reset or bold, or none)", p.arg)
			}
		case "id", "level", "message", "module", "shortfunc":
			if p.arg != "" && strings.ContainsAny(p.arg, "%") {
				return nil, fmt.Errorf("bad argument %q of %%{%s}", p.arg, p.verb)
			}
		}
		e.parts = append(e.parts, p)
		pos = m[1]
	}
	if pos < len(format) {
		e.parts = append(e.parts, part{lit: format[pos:]})
	}
	return e, nil
}

func (e *encoder) encode(buf []byte, en *entry) []byte {
	switch e.kind {
	case "json":
		return encodeJSON(buf, en)
	case "logfmt":
		return encodeLogfmt(buf, en)
	}
	for _, p := range e.parts {
		if p.verb == "" {
			buf = append(buf, p.lit...)
			continue
		}
		buf = consoleVerb(buf, p, en)
	}
	for _, a := range en.attrs {
		buf = append(buf, ' ')
		buf = appendKV(buf, a)
	}
	return append(buf, '\n')
}

func consoleVerb(buf []byte, p part, en *entry) []byte {
	printf := func(def string, v any) []byte {
		f := def
		if p.arg != "" {
			f = "%" + p.arg
		}
		return fmt.Appendf(buf, f, v)
	}
	switch p.verb {
	case "color":
		switch p.arg {
		case "reset":
			return append(buf, "\x1b[0m"...)
		case "bold":
			return append(buf, "\x1b[1m"...)
		}
		return append(buf, levelColor(en.rec.Level)...)
	case "id":
		return printf("%d", en.seq)
	case "level":
		return printf("%s", strings.ToUpper(consoleLevel(en.rec.Level)))
	case "message":
		return printf("%s", en.rec.Message)
	case "module":
		return printf("%s", en.name)
	case "shortfunc":
		return printf("%s", shortFunc(en.rec.PC))
	case "time":
		layout := p.arg
		if layout == "" {
			layout = "2006-01-02T15:04:05.999Z07:00"
		}
		return en.rec.Time.AppendFormat(buf, layout)
	}
	return buf
}

// consoleLevel names levels as Fabric's console lines do (WARN, not WARNING).
func consoleLevel(l slog.Level) string { return LevelName(l) }

func levelColor(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "\x1b[34m"
	case l < slog.LevelWarn:
		return "\x1b[36m"
	case l < slog.LevelError:
		return "\x1b[33m"
	default:
		return "\x1b[31m"
	}
}

func shortFunc(pc uintptr) string {
	if pc == 0 {
		return "?"
	}
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	name := f.Function
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func appendKV(buf []byte, a slog.Attr) []byte {
	buf = appendLogfmtString(buf, a.Key)
	buf = append(buf, '=')
	return appendLogfmtString(buf, valueString(a.Value))
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		if s, ok := v.Any().(fmt.Stringer); ok {
			return s.String()
		}
		if b, ok := v.Any().([]byte); ok {
			return fmt.Sprintf("%x", b)
		}
		return fmt.Sprint(v.Any())
	default:
		return v.String()
	}
}

// appendLogfmtString writes s bare when it is a simple word, quoted otherwise.
func appendLogfmtString(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, `""`...)
	}
	for _, r := range s {
		if r <= ' ' || r == '=' || r == '"' || r == utf8.RuneError || r > '~' {
			return strconv.AppendQuote(buf, s)
		}
	}
	return append(buf, s...)
}

func encodeLogfmt(buf []byte, en *entry) []byte {
	buf = append(buf, "ts="...)
	buf = en.rec.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, " level="...)
	buf = append(buf, LevelName(en.rec.Level)...)
	buf = append(buf, " logger="...)
	buf = appendLogfmtString(buf, en.name)
	buf = append(buf, " msg="...)
	buf = appendLogfmtString(buf, en.rec.Message)
	for _, a := range en.attrs {
		buf = append(buf, ' ')
		buf = appendKV(buf, a)
	}
	return append(buf, '\n')
}

func encodeJSON(buf []byte, en *entry) []byte {
	buf = append(buf, `{"level":`...)
	buf = strconv.AppendQuote(buf, LevelName(en.rec.Level))
	buf = append(buf, `,"ts":`...)
	buf = strconv.AppendFloat(buf, float64(en.rec.Time.UnixNano())/1e9, 'f', 6, 64)
	buf = append(buf, `,"name":`...)
	buf = appendJSON(buf, en.name)
	buf = append(buf, `,"msg":`...)
	buf = appendJSON(buf, en.rec.Message)
	for _, a := range en.attrs {
		buf = append(buf, ',')
		buf = appendJSON(buf, a.Key)
		buf = append(buf, ':')
		buf = appendJSONValue(buf, a.Value)
	}
	return append(buf, "}\n"...)
}

func appendJSON(buf []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return append(buf, b...)
}

func appendJSONValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendJSON(buf, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(buf, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(buf, v.Bool())
	case slog.KindFloat64:
		return appendJSON(buf, v.Float64())
	case slog.KindDuration:
		return appendJSON(buf, v.Duration().String())
	case slog.KindTime:
		return appendJSON(buf, v.Time().Format(time.RFC3339Nano))
	}
	a := v.Any()
	if err, ok := a.(error); ok {
		return appendJSON(buf, err.Error())
	}
	if _, ok := a.(json.Marshaler); !ok {
		if s, ok := a.(fmt.Stringer); ok {
			return appendJSON(buf, s.String())
		}
	}
	return appendJSON(buf, a)
}
