// Package session is net/http middleware that gives handlers a session (session.Get(r))
// stored as JSON in a cookie whose value is a token signed by the sessiontoken service. The
// rules are the Express middleware's (client/node/lib/session.js) and Flask's:
//   - the cookie is written only when the session changed during the request (compared as
//     JSON, so nested changes count) or when Verify says refresh_recommended (the token's key
//     was rotated out: re-issued under the new primary key), or with RefreshAfter (rolling
//     expiry) once the token is that old;
//   - a session that had data and was emptied deletes the cookie;
//   - a missing, tampered, expired or foreign cookie gives an empty session and is left alone;
//   - fail closed: if the service cannot be reached or fails, the session is empty (an
//     unverified cookie is never trusted), the error is logged and the request goes on; that
//     session is never saved, so the browser's cookie is neither replaced nor deleted, unless
//     the handler calls Regenerate (login) or Destroy (logout);
//   - a session over MaxPayloadBytes (or that Sign refuses as too large) is not saved: the
//     error is logged and, if it was changed, the cookie is deleted. Any other Sign failure
//     of a changed session does the same;
//   - cookie values are never logged;
//   - revocation (the service's Revoke): with SubjectKey (e.g. "user_id"), every token is
//     signed with the session's value of that key as its subject. Session.Logout revokes the
//     token the request came with and deletes the cookie; Session.LogoutEverywhere revokes
//     every session of the subject issued until now ("log out everywhere": the cookies of
//     other devices are REVOKED on their next request) and deletes the cookie. Both delete
//     the cookie even when the revocation fails; the error is then logged and returned. A
//     REVOKED cookie gives an empty session, like a tampered one.
//
// The cookie is set when the response starts (the handler's first WriteHeader, Write or
// Flush, or when it returns without writing): Sign runs then, in the handler's goroutine.
// Changes made after the response started are not saved; they are logged as a warning.
package session

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"sessiontoken"
)

// DefaultMaxPayloadBytes is the service's default limit of a native token's payload (server
// flag max_payload_bytes).
const DefaultMaxPayloadBytes = 2048

// Service is what the middleware needs of a *sessiontoken.Client.
type Service interface {
	Sign(ctx context.Context, r sessiontoken.SignRequest) (sessiontoken.SignResult, error)
	Verify(ctx context.Context, r sessiontoken.VerifyRequest) (sessiontoken.VerifyResult, error)
	Revoke(ctx context.Context, r sessiontoken.RevokeRequest) (sessiontoken.RevokeResult, error)
}

// Logger receives the middleware's messages ("error: ...", "warning: ...", "debug: ...").
// *log.Logger satisfies it.
type Logger interface {
	Printf(format string, v ...any)
}

// Options configures the middleware. Client, Keyring and Audience are required.
type Options struct {
	Client   Service
	Keyring  string
	Audience string // names this cookie's purpose; bound into every token

	CookieName      string        // default "session"
	TTL             time.Duration // token lifetime, default 24h
	MaxAge          time.Duration // oldest token accepted, default TTL
	RefreshAfter    time.Duration // 0: off; else re-sign an unchanged session this old (< TTL)
	MaxPayloadBytes int           // default DefaultMaxPayloadBytes; -1: no limit here
	Deadline        time.Duration // of each Sign/Verify; default: the client's
	Cookie          CookieOptions
	// SubjectKey names the session key holding the user id (e.g. "user_id"; a string or a
	// number): tokens are signed with its value as their subject, which LogoutEverywhere
	// revokes. "" (default): tokens carry no subject.
	SubjectKey string

	Logger Logger // default log.Default()
	Debug  bool   // also log why a cookie was rejected (never its value)
}

// Middleware wraps handlers; create it once with New.
type Middleware struct {
	o          Options
	tag        string
	warnedXFP  sync.Once
	maxPayload int
}

// New checks the options.
func New(o Options) (*Middleware, error) {
	if o.Client == nil || o.Keyring == "" {
		return nil, errors.New("session: Options.Client and Options.Keyring are required")
	}
	if o.CookieName == "" {
		o.CookieName = "session"
	}
	if !validName(o.CookieName) {
		return nil, fmt.Errorf("session: invalid cookie name %q", o.CookieName)
	}
	if o.TTL == 0 {
		o.TTL = 24 * time.Hour
	}
	if o.MaxAge == 0 {
		o.MaxAge = o.TTL
	}
	if o.TTL < time.Second || o.TTL%time.Second != 0 || o.MaxAge < 0 || o.MaxAge%time.Second != 0 {
		return nil, errors.New("session: TTL and MaxAge must be whole seconds")
	}
	if o.RefreshAfter < 0 || (o.RefreshAfter > 0 && o.RefreshAfter >= o.TTL) {
		return nil, errors.New("session: RefreshAfter must be less than TTL")
	}
	if o.MaxPayloadBytes == 0 {
		o.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if err := o.Cookie.normalize(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = log.Default()
	}
	return &Middleware{o: o, tag: fmt.Sprintf("sessiontoken.session[%s]", o.CookieName),
		maxPayload: o.MaxPayloadBytes}, nil
}

func (m *Middleware) logf(level, format string, v ...any) {
	if level == "debug" && !m.o.Debug {
		return
	}
	m.o.Logger.Printf("%s: %s: %s", level, m.tag, fmt.Sprintf(format, v...))
}

func (m *Middleware) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.o.Deadline > 0 {
		return context.WithTimeout(ctx, m.o.Deadline)
	}
	return context.WithCancel(ctx)
}

// loaded is what the request's cookie held.
type loaded struct {
	values     map[string]any
	refresh    bool // re-issue even if unchanged
	hadCookie  bool
	unverified bool
	token      string // the valid token the request came with (what Logout revokes)
}

// load reads and verifies the request's cookie.
func (m *Middleware) load(r *http.Request) loaded {
	c, err := r.Cookie(m.o.CookieName)
	if err != nil || c.Value == "" {
		return loaded{values: map[string]any{}}
	}
	empty := loaded{values: map[string]any{}, hadCookie: true}
	if len(c.Value) > sessiontoken.MaxTokenChars {
		m.logf("debug", "session cookie rejected: longer than %d characters", sessiontoken.MaxTokenChars)
		return empty
	}
	ctx, cancel := m.callContext(r.Context())
	defer cancel()
	v, err := m.o.Client.Verify(ctx, sessiontoken.VerifyRequest{Keyring: m.o.Keyring,
		Token: c.Value, Audience: m.o.Audience, MaxAge: m.o.MaxAge})
	if err != nil {
		m.logf("error", "cannot verify the session cookie, using an empty session: %v", err)
		empty.unverified = true
		return empty
	}
	if !v.Valid {
		m.logf("debug", "session cookie rejected: %s", v.Result)
		return empty
	}
	values, ok := decodeObject(v.Payload)
	if !ok {
		m.logf("warning", "valid token whose payload is not a JSON object; using an empty session")
		return empty
	}
	refresh := v.RefreshRecommended ||
		(m.o.RefreshAfter > 0 && !v.IssuedAt.IsZero() && time.Since(v.IssuedAt) >= m.o.RefreshAfter)
	return loaded{values: values, refresh: refresh, hadCookie: true, token: c.Value}
}

// Handler returns next wrapped: it runs with the session in its request's context.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Get(r) != nil { // installed twice
			next.ServeHTTP(w, r)
			return
		}
		l := m.load(r)
		initial, _, _ := (&Session{values: l.values}).snapshot()
		s := &Session{values: l.values, unverified: l.unverified, m: m, token: l.token}
		rw := &writer{ResponseWriter: w, m: m, r: r, s: s, l: l, initial: initial}
		next.ServeHTTP(rw, r.WithContext(withSession(r.Context(), s)))
		if !rw.started {
			rw.start()
		} else {
			rw.warnLate()
		}
	})
}

// action is what the response needs.
type action int

const (
	keep action = iota
	clear
	sign
)

// decide compares the session now with what the cookie held.
func decide(l loaded, initial, now string, regenerated bool) action {
	if l.unverified && !regenerated {
		return keep // the cookie may hold a valid login: never touch it
	}
	if now == "{}" {
		if initial != "{}" || (regenerated && l.hadCookie) {
			return clear
		}
		return keep
	}
	if now != initial || l.refresh || regenerated {
		return sign
	}
	return keep
}

// setCookie signs json (with subject, "" for none) and returns the Set-Cookie value to add
// ("" for none).
func (m *Middleware) setCookie(r *http.Request, l loaded, json, subject string, refreshOnly, secure bool) string {
	var err error
	if m.maxPayload >= 0 && len(json) > m.maxPayload {
		err = fmt.Errorf("session too large (%d bytes, limit %d)", len(json), m.maxPayload)
	} else {
		ctx, cancel := m.callContext(r.Context())
		var res sessiontoken.SignResult
		res, err = m.o.Client.Sign(ctx, sessiontoken.SignRequest{Keyring: m.o.Keyring,
			Payload: []byte(json), TTL: m.o.TTL, Audience: m.o.Audience, Subject: subject})
		cancel()
		if err == nil {
			var c string
			if c, err = m.o.Cookie.setCookie(m.o.CookieName, res.Token, secure, time.Now()); err == nil {
				return c
			}
		}
		var e *sessiontoken.Error
		if errors.As(err, &e) && e.Code == codes.InvalidArgument && strings.HasPrefix(e.Message, "payload:") {
			err = fmt.Errorf("session too large (%d bytes): %s", len(json), e.Message)
		}
	}
	if refreshOnly || l.unverified || !l.hadCookie {
		if refreshOnly {
			m.logf("warning", "cannot re-issue the session cookie (the cookie is left unchanged): %v", err)
		} else {
			m.logf("error", "session not saved: %v", err)
		}
		return ""
	}
	// A changed session that cannot be stored must not leave the previous state behind.
	m.logf("error", "session not saved, cookie deleted: %v", err)
	return m.o.Cookie.clearCookie(m.o.CookieName, secure)
}

// revoke runs a logout's Revoke; the session is already destroyed (its cookie is deleted
// whatever the service answers). A failure is logged (never the token) and returned.
func (m *Middleware) revoke(ctx context.Context, what string, r sessiontoken.RevokeRequest) (*sessiontoken.RevokeResult, error) {
	r.Keyring = m.o.Keyring
	ctx, cancel := m.callContext(ctx)
	defer cancel()
	res, err := m.o.Client.Revoke(ctx, r)
	if err != nil {
		m.logf("error", "%s: not revoked (the cookie is deleted anyway): %v", what, err)
		return nil, err
	}
	return &res, nil
}

func (m *Middleware) secureFor(r *http.Request) bool {
	secure := m.o.Cookie.secureFor(r)
	if !secure && m.o.Cookie.Secure == SecureAuto {
		xfp := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0]))
		if xfp == "https" {
			m.warnedXFP.Do(func() {
				m.logf("warning", "Cookie.Secure is SecureAuto and the request came through a proxy as "+
					"HTTPS (X-Forwarded-Proto: https): the session cookie is sent without Secure; "+
					"behind a TLS-terminating proxy use SecureAlways")
			})
		}
	}
	return secure
}
