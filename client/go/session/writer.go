package session

// writer sets the session cookie when the response starts.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
)

type writer struct {
	http.ResponseWriter
	m       *Middleware
	r       *http.Request
	s       *Session
	l       loaded
	initial string // the session's JSON as loaded
	saved   string // its JSON when the response started
	started bool
}

// start decides, signs if needed and adds Set-Cookie, once, before the headers go out.
func (w *writer) start() {
	if w.started {
		return
	}
	w.started = true
	now, regenerated, err := w.s.snapshot()
	if err != nil {
		w.m.logf("error", "session not saved: not JSON-serialisable: %v", err)
		w.saved = w.initial
		return
	}
	w.saved = now
	a := decide(w.l, w.initial, now, regenerated)
	if w.l.unverified && !regenerated && now != w.initial {
		w.m.logf("warning", "session not saved: the request's cookie could not be verified; the cookie is left unchanged")
	}
	switch a {
	case clear:
		w.Header().Add("Set-Cookie", w.m.o.Cookie.clearCookie(w.m.o.CookieName, w.m.secureFor(w.r)))
	case sign:
		refreshOnly := now == w.initial && !regenerated
		subject := w.s.subject(w.m.o.SubjectKey)
		if c := w.m.setCookie(w.r, w.l, now, subject, refreshOnly, w.m.secureFor(w.r)); c != "" {
			w.Header().Add("Set-Cookie", c)
		}
	}
}

func (w *writer) warnLate() {
	if now, _, err := w.s.snapshot(); err == nil && now != w.saved {
		w.m.logf("warning", "session changed after the response started; change not saved")
	}
}

func (w *writer) WriteHeader(code int) {
	w.start()
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming handlers working (http.Flusher).
func (w *writer) Flush() {
	w.start()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ReadFrom keeps io.Copy into the response (http.ServeContent, sendfile) fast.
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	w.start()
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(w.ResponseWriter, src)
}

// Unwrap gives http.ResponseController (Go 1.20+) the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack keeps WebSocket upgrades working (http.Hijacker). The session is not saved: a
// hijacked connection sends no headers through the ResponseWriter.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("session: the underlying ResponseWriter cannot be hijacked")
	}
	w.started = true
	now, _, _ := w.s.snapshot()
	w.saved = now
	if now != w.initial {
		w.m.logf("warning", "session changed before the connection was hijacked; change not saved")
	}
	return h.Hijack()
}
