// Package logging is kord's logging: named loggers on log/slog whose levels follow a
// specification in Fabric's FABRIC_LOGGING_SPEC syntax ("info:orderer.consensus.kafka=debug"),
// changeable while the process runs (the operations endpoint's /logspec), and written in
// Fabric's console format, as JSON or as logfmt (FABRIC_LOGGING_FORMAT).
//
// A logger's name is set by the attribute LoggerKey: log.With("logger", "orderer.common.broadcast")
// on a logger from this package renames it instead of adding an attribute, so packages name
// their loggers without importing this one (under any other slog handler the name is an
// ordinary attribute). Names are dotted, and a spec entry applies to a name and everything
// below it, as in Fabric.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// LoggerKey is the attribute that names a logger.
const LoggerKey = "logger"

// Observer is told about log entries, for Fabric's logging_entries_checked and
// logging_entries_written metrics.
type Observer interface {
	// Checked is called for every entry offered to a logger, whether or not its level is
	// enabled.
	Checked(level slog.Level)
	// Written is called for every entry written.
	Written(level slog.Level)
}

// Config configures a Logging.
type Config struct {
	// Spec is the initial logging spec; empty means "info".
	Spec string
	// Format is FABRIC_LOGGING_FORMAT: "json", "logfmt", or a console format with Fabric's
	// %{verb} placeholders; empty means Fabric's default console format (without colour).
	Format string
	// Writer receives the lines; nil means os.Stderr.
	Writer io.Writer
}

// Logging owns the process's log output and the spec in force.
type Logging struct {
	w   io.Writer
	wmu sync.Mutex // serialises writes, so lines never interleave

	spec   atomic.Pointer[levels]
	format atomic.Pointer[encoder]
	obs    atomic.Pointer[observerBox]
	seq    atomic.Uint64 // %{id}
}

type observerBox struct{ o Observer }

// levels is one spec with a cache of the levels of the names looked up under it.
type levels struct {
	spec  *Spec
	cache sync.Map // logger name → slog.Level
}

func (lv *levels) level(name string) slog.Level {
	if l, ok := lv.cache.Load(name); ok {
		return l.(slog.Level)
	}
	l := lv.spec.Level(name)
	lv.cache.Store(name, l)
	return l
}

// New builds a Logging. A bad spec or format is an error that names it.
func New(c Config) (*Logging, error) {
	l := &Logging{w: c.Writer}
	if l.w == nil {
		l.w = os.Stderr
	}
	if err := l.ActivateSpec(c.Spec); err != nil {
		return nil, err
	}
	if err := l.SetFormat(c.Format); err != nil {
		return nil, err
	}
	return l, nil
}

// ActivateSpec replaces the spec in force; on error the old one stays.
func (l *Logging) ActivateSpec(spec string) error {
	s, err := ParseSpec(spec)
	if err != nil {
		return err
	}
	l.spec.Store(&levels{spec: s})
	return nil
}

// Spec is the spec in force, in normal form.
func (l *Logging) Spec() string { return l.spec.Load().spec.String() }

// SetFormat changes the output format (see Config.Format).
func (l *Logging) SetFormat(format string) error {
	enc, err := newEncoder(format)
	if err != nil {
		return fmt.Errorf("logging: format %q: %w", format, err)
	}
	l.format.Store(enc)
	return nil
}

// SetObserver sets the observer of log entries (nil for none).
func (l *Logging) SetObserver(o Observer) {
	if o == nil {
		l.obs.Store(nil)
		return
	}
	l.obs.Store(&observerBox{o})
}

// Logger returns the logger called name.
func (l *Logging) Logger(name string) *slog.Logger { return slog.New(l.Handler(name)) }

// Handler returns the slog handler of the logger called name.
func (l *Logging) Handler(name string) slog.Handler { return &handler{l: l, name: name} }

// handler is one named logger with its attributes.
type handler struct {
	l      *Logging
	name   string
	attrs  []slog.Attr // keys already qualified by the groups open when they were added
	prefix string      // open groups, "a.b."
}

func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	if b := h.l.obs.Load(); b != nil {
		b.o.Checked(level)
	}
	return level >= h.l.spec.Load().level(h.name)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if a.Key == LoggerKey && h.prefix == "" && a.Value.Kind() == slog.KindString {
			c.name = a.Value.String()
			continue
		}
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr adds a to attrs with its key qualified by prefix, flattening groups.
func appendAttr(attrs []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return attrs
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range a.Value.Group() {
			attrs = appendAttr(attrs, p, g)
		}
		return attrs
	}
	a.Key = prefix + a.Key
	return append(attrs, a)
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	attrs := make([]slog.Attr, 0, len(h.attrs)+r.NumAttrs())
	attrs = append(attrs, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = appendAttr(attrs, h.prefix, a)
		return true
	})
	e := entry{rec: r, name: h.name, attrs: attrs, seq: h.l.seq.Add(1)}
	buf := h.l.format.Load().encode(nil, &e)
	h.l.wmu.Lock()
	_, err := h.l.w.Write(buf)
	h.l.wmu.Unlock()
	if b := h.l.obs.Load(); b != nil {
		b.o.Written(r.Level)
	}
	return err
}
