package session

// Session is the per-request session a handler gets from the request context: a map of
// JSON values, stored in a cookie signed by the sessiontoken service.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"sessiontoken"
)

type ctxKey struct{}

// Session holds one request's session data. Its methods are safe for concurrent use; values
// stored in it (maps, slices) must not be changed concurrently with the response start.
type Session struct {
	mu          sync.Mutex
	values      map[string]any
	regenerated bool // Regenerate or Destroy: a login or logout, saved even if unverified
	unverified  bool
	m           *Middleware
	token       string // the valid token the request came with, "" if none
}

// Get returns the session of a request that passed through the middleware, or nil.
func Get(r *http.Request) *Session {
	s, _ := r.Context().Value(ctxKey{}).(*Session)
	return s
}

func withSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// Get returns a value. Numbers read from the cookie are json.Number.
func (s *Session) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	return v, ok
}

// GetString returns a string value, or "" if the key is absent or not a string.
func (s *Session) GetString(key string) string {
	v, _ := s.Get(key)
	str, _ := v.(string)
	return str
}

// Set stores a value; it must be JSON-serialisable.
func (s *Session) Set(key string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = value
}

// Delete removes a key.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
}

// Values returns a shallow copy of the session's data.
func (s *Session) Values() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]any, len(s.values))
	for k, v := range s.values {
		out[k] = v
	}
	return out
}

// Clear empties the session; the cookie is deleted if there was one.
func (s *Session) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = map[string]any{}
}

// Regenerate starts a new, empty session (call it at login). Unlike other changes, it also
// replaces a cookie the middleware could not verify because the service was down.
func (s *Session) Regenerate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = map[string]any{}
	s.regenerated = true
}

// Destroy empties the session and deletes the cookie (call it at logout), even one the
// middleware could not verify.
func (s *Session) Destroy() { s.Regenerate() }

// Logout revokes the token the request came with (a copy of the cookie, replayed, is then
// REVOKED) and destroys the session: the cookie is deleted even when the revocation fails,
// which is then logged and returned so that the handler can tell the user. It returns nil
// and no error when the request had no valid token (nothing to revoke).
func (s *Session) Logout(ctx context.Context) (*sessiontoken.RevokeResult, error) {
	s.Destroy()
	s.mu.Lock()
	token, m := s.token, s.m
	s.mu.Unlock()
	if token == "" || m == nil {
		return nil, nil
	}
	return m.revoke(ctx, "logout", sessiontoken.RevokeRequest{Token: token, Audience: m.o.Audience})
}

// LogoutEverywhere revokes every session of this session's subject (its Options.SubjectKey
// value) issued until now, on every device, and destroys the session (the cookie is deleted
// even when the revocation fails, which is then logged and returned). It fails without
// changing anything when the session has no subject.
func (s *Session) LogoutEverywhere(ctx context.Context) (*sessiontoken.RevokeResult, error) {
	if s.m == nil || s.m.o.SubjectKey == "" {
		return nil, errors.New("session: LogoutEverywhere needs Options.SubjectKey")
	}
	subject := s.subject(s.m.o.SubjectKey)
	if subject == "" {
		return nil, fmt.Errorf("session: LogoutEverywhere: the session has no %q", s.m.o.SubjectKey)
	}
	s.Destroy()
	return s.m.revoke(ctx, "logout everywhere", sessiontoken.RevokeRequest{Subject: subject})
}

// subject returns the session's value of key as a string ("" if key is "" or the value is
// absent or null).
func (s *Session) subject(key string) string {
	if key == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch v := s.values[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Unverified reports whether the request's cookie could not be checked (the service was
// unreachable or failed): the session is empty and nothing the handler writes into it is
// saved, except after Regenerate or Destroy.
func (s *Session) Unverified() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unverified
}

// snapshot returns the session's JSON and whether it was regenerated.
func (s *Session) snapshot() (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s.values)
	return string(b), s.regenerated, err
}

// decodeObject parses a payload that must be a JSON object; numbers stay json.Number so that
// an unchanged session re-encodes to the same text.
func decodeObject(payload []byte) (map[string]any, bool) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil || v == nil || d.More() {
		return nil, false
	}
	return v, true
}
