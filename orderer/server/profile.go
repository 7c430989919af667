package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startProfile serves Go's pprof handlers on General.Profile.Address when General.Profile
// is enabled, as Fabric's orderer does. It is a separate plain-HTTP listener, never the
// operations one: profiles expose internals and an operator opens it only to diagnose.
func (s *Server) startProfile() error {
	p := s.cfg.General.Profile
	if !p.Enabled {
		return nil
	}
	lis, err := net.Listen("tcp", p.Address)
	if err != nil {
		return fmt.Errorf("General.Profile.Address=%s: %w", p.Address, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.profLis = lis
	s.prof = s.serveHTTP(lis, mux, "orderer.common.server", "profile server")
	s.log.Info("profiling enabled", "address", lis.Addr().String())
	return nil
}

// ProfileAddr is the pprof listener's address, or "" when profiling is off.
func (s *Server) ProfileAddr() string {
	if s.profLis == nil {
		return ""
	}
	return s.profLis.Addr().String()
}

// serveHTTP serves h on lis until the server is shut down, logging the server's own errors
// at warning level under logger (Fabric's logger name for it); what names the server in the
// error logged if serving stops for any other reason.
func (s *Server) serveHTTP(lis net.Listener, h http.Handler, logger, what string) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.With("logger", logger).Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(what+" stopped", "err", err)
		}
	}()
	return srv
}
