package session

// Cookie and refresh rules without a server: what decide() does for each case, the
// Set-Cookie values, option checks, the JSON round trip of a session and the Sign/Revoke
// requests of the revocation calls.

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sessiontoken"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name         string
		l            loaded
		initial, now string
		regenerated  bool
		want         action
	}{
		{"no cookie, nothing written", loaded{}, "{}", "{}", false, keep},
		{"no cookie, login", loaded{}, "{}", `{"u":1}`, false, sign},
		{"unchanged", loaded{hadCookie: true}, `{"u":1}`, `{"u":1}`, false, keep},
		{"changed", loaded{hadCookie: true}, `{"u":1}`, `{"u":2}`, false, sign},
		{"unchanged, refresh_recommended", loaded{hadCookie: true, refresh: true}, `{"u":1}`, `{"u":1}`, false, sign},
		{"emptied", loaded{hadCookie: true}, `{"u":1}`, "{}", false, clear},
		{"invalid cookie left alone", loaded{hadCookie: true}, "{}", "{}", false, keep},
		{"invalid cookie, Destroy", loaded{hadCookie: true}, "{}", "{}", true, clear},
		{"unverified, changed: never saved", loaded{hadCookie: true, unverified: true}, "{}", `{"u":1}`, false, keep},
		{"unverified, emptied: never deleted", loaded{hadCookie: true, unverified: true}, "{}", "{}", false, keep},
		{"unverified, Regenerate + login", loaded{hadCookie: true, unverified: true}, "{}", `{"u":1}`, true, sign},
		{"unverified, Destroy", loaded{hadCookie: true, unverified: true}, "{}", "{}", true, clear},
		{"Regenerate with the same data", loaded{hadCookie: true}, `{"u":1}`, `{"u":1}`, true, sign},
	}
	for _, c := range cases {
		if got := decide(c.l, c.initial, c.now, c.regenerated); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCookieAttributes(t *testing.T) {
	def := CookieOptions{}
	if err := def.normalize(); err != nil {
		t.Fatal(err)
	}
	got, err := def.setCookie("session", "st1.abc", false, time.Unix(0, 0))
	if err != nil || got != "session=st1.abc; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("defaults: %q %v", got, err)
	}
	all := CookieOptions{Path: "/app", Domain: "example.com", MaxAge: time.Hour, Secure: SecureAlways,
		NoHTTPOnly: true, SameSite: http.SameSiteNoneMode, Partitioned: true}
	if err := all.normalize(); err != nil {
		t.Fatal(err)
	}
	got, _ = all.setCookie("sid", "v", all.secureFor(httptest.NewRequest("GET", "/", nil)), time.Unix(0, 0))
	want := "sid=v; Max-Age=3600; Expires=Thu, 01 Jan 1970 01:00:00 GMT; Domain=example.com; Path=/app; Secure; Partitioned; SameSite=None"
	if got != want {
		t.Errorf("all attributes:\n got %q\nwant %q", got, want)
	}
	if c := all.clearCookie("sid", true); c != "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/app; Secure; Partitioned; SameSite=None" {
		t.Errorf("clear: %q", c)
	}
	if _, err := def.setCookie("session", "a;b", false, time.Now()); err == nil {
		t.Error("a value with ';' was accepted")
	}
	for _, bad := range []CookieOptions{{Path: "/a;b"}, {Domain: "x\n"}, {MaxAge: 1500 * time.Millisecond}, {SameSite: 9}} {
		if err := bad.normalize(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestSecureAuto(t *testing.T) {
	o := CookieOptions{}
	o.normalize()
	plain := httptest.NewRequest("GET", "http://x/", nil)
	tlsReq := httptest.NewRequest("GET", "https://x/", nil)
	tlsReq.TLS = &tls.ConnectionState{}
	if o.secureFor(plain) || !o.secureFor(tlsReq) {
		t.Error("SecureAuto: Secure must follow r.TLS")
	}
	o.Secure = SecureNever
	if o.secureFor(tlsReq) {
		t.Error("SecureNever sets Secure")
	}
	var logs strings.Builder
	m, err := New(Options{Client: dummyService{}, Keyring: "k", Logger: logPrinter{&logs}})
	if err != nil {
		t.Fatal(err)
	}
	proxied := httptest.NewRequest("GET", "http://x/", nil)
	proxied.Header.Set("X-Forwarded-Proto", "https")
	m.secureFor(proxied)
	m.secureFor(proxied)
	if n := strings.Count(logs.String(), "X-Forwarded-Proto"); n != 1 {
		t.Errorf("proxy warning logged %d times:\n%s", n, logs.String())
	}
}

func TestOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no client":             {Keyring: "k"},
		"no keyring":            {Client: dummyService{}},
		"bad cookie name":       {Client: dummyService{}, Keyring: "k", CookieName: "a b"},
		"fractional TTL":        {Client: dummyService{}, Keyring: "k", TTL: 1500 * time.Millisecond},
		"RefreshAfter >= TTL":   {Client: dummyService{}, Keyring: "k", TTL: time.Hour, RefreshAfter: time.Hour},
		"negative RefreshAfter": {Client: dummyService{}, Keyring: "k", RefreshAfter: -time.Second},
		"bad cookie attribute":  {Client: dummyService{}, Keyring: "k", Cookie: CookieOptions{Path: "a;b"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m, err := New(Options{Client: dummyService{}, Keyring: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if m.o.CookieName != "session" || m.o.TTL != 24*time.Hour || m.o.MaxAge != m.o.TTL || m.maxPayload != DefaultMaxPayloadBytes {
		t.Errorf("defaults: %+v", m.o)
	}
}

func TestSessionJSON(t *testing.T) {
	v, ok := decodeObject([]byte(`{"n":12345678901234567890,"f":1.50,"u":"a"}`))
	if !ok {
		t.Fatal("object rejected")
	}
	s := &Session{values: v}
	got, _, _ := s.snapshot()
	if got != `{"f":1.50,"n":12345678901234567890,"u":"a"}` {
		t.Errorf("numbers must survive unchanged (an unchanged session is not re-signed): %s", got)
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{"a":1} {}`, `{`, ``} {
		if _, ok := decodeObject([]byte(bad)); ok {
			t.Errorf("%q accepted as a session", bad)
		}
	}
	s.Set("ch", make(chan int))
	if _, _, err := s.snapshot(); err == nil {
		t.Error("a channel was serialised")
	}
}

// recorder is a Service that verifies every cookie as Valid (payload `{"user":42}`, or Result
// REVOKED for the cookie "revoked") and records what Sign and Revoke are sent.
type recorder struct {
	signs   []sessiontoken.SignRequest
	revokes []sessiontoken.RevokeRequest
}

func (f *recorder) Sign(_ context.Context, r sessiontoken.SignRequest) (sessiontoken.SignResult, error) {
	f.signs = append(f.signs, r)
	return sessiontoken.SignResult{Token: "signed"}, nil
}

func (f *recorder) Verify(_ context.Context, r sessiontoken.VerifyRequest) (sessiontoken.VerifyResult, error) {
	if r.Token == "revoked" {
		return sessiontoken.VerifyResult{Result: "REVOKED"}, nil
	}
	return sessiontoken.VerifyResult{Result: "VALID", Valid: true, Payload: []byte(`{"user":42}`)}, nil
}

func (f *recorder) Revoke(_ context.Context, r sessiontoken.RevokeRequest) (sessiontoken.RevokeResult, error) {
	f.revokes = append(f.revokes, r)
	return sessiontoken.RevokeResult{RevokedAt: time.Unix(1, 0)}, nil
}

// serve runs handler behind m with the cookie "session=cookie" ("" for none) and returns the
// Set-Cookie header.
func serve(m *Middleware, cookie string, handler func(*Session)) string {
	req := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	rec := httptest.NewRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(Get(r)) })).ServeHTTP(rec, req)
	return rec.Header().Get("Set-Cookie")
}

// What the middleware sends: the SubjectKey value as Sign's subject (none without SubjectKey),
// Logout's Revoke of the request's token with the audience, LogoutEverywhere's Revoke of the
// subject; a REVOKED cookie gives an empty session.
func TestLogoutRequests(t *testing.T) {
	f := &recorder{}
	m, err := New(Options{Client: f, Keyring: "k", Audience: "a", SubjectKey: "user", Logger: logPrinter{&strings.Builder{}}})
	if err != nil {
		t.Fatal(err)
	}
	serve(m, "", func(s *Session) { s.Set("user", "alice") })
	serve(m, "tok1", func(s *Session) { s.Set("n", 1) }) // user 42 from the cookie, a number
	serve(m, "", func(s *Session) { s.Set("n", 1) })
	if len(f.signs) != 3 || f.signs[0].Subject != "alice" || f.signs[1].Subject != "42" || f.signs[2].Subject != "" ||
		f.signs[0].Keyring != "k" || f.signs[0].Audience != "a" {
		t.Errorf("Sign requests: %+v", f.signs)
	}

	var res *sessiontoken.RevokeResult
	if c := serve(m, "tok1", func(s *Session) { res, err = s.Logout(context.Background()) }); err != nil || res == nil ||
		!strings.HasPrefix(c, "session=; Max-Age=0") {
		t.Errorf("Logout: %v %v, Set-Cookie %q", res, err, c)
	}
	if c := serve(m, "tok2", func(s *Session) { res, err = s.LogoutEverywhere(context.Background()) }); err != nil || res == nil ||
		!strings.HasPrefix(c, "session=; Max-Age=0") {
		t.Errorf("LogoutEverywhere: %v %v, Set-Cookie %q", res, err, c)
	}
	want := []sessiontoken.RevokeRequest{{Keyring: "k", Token: "tok1", Audience: "a"}, {Keyring: "k", Subject: "42"}}
	if len(f.revokes) != 2 || f.revokes[0] != want[0] || f.revokes[1] != want[1] {
		t.Errorf("Revoke requests: %+v, want %+v", f.revokes, want)
	}

	// Nothing to revoke: no valid token (Logout only deletes), no subject (LogoutEverywhere fails
	// and changes nothing), a REVOKED cookie (an empty session, left alone).
	f.revokes = nil
	serve(m, "revoked", func(s *Session) {
		if len(s.Values()) != 0 {
			t.Errorf("REVOKED cookie: session %v", s.Values())
		}
		if res, err := s.Logout(context.Background()); res != nil || err != nil {
			t.Errorf("Logout of a REVOKED cookie: %v %v", res, err)
		}
	})
	serve(m, "", func(s *Session) {
		s.Set("n", 1)
		if _, err := s.LogoutEverywhere(context.Background()); err == nil || len(s.Values()) != 1 {
			t.Errorf("LogoutEverywhere without a subject: %v, session %v", err, s.Values())
		}
	})
	noKey, _ := New(Options{Client: f, Keyring: "k"})
	serve(noKey, "tok3", func(s *Session) {
		if _, err := s.LogoutEverywhere(context.Background()); err == nil || len(s.Values()) != 1 {
			t.Errorf("LogoutEverywhere without SubjectKey: %v, session %v", err, s.Values())
		}
		s.Set("n", 2)
	})
	if len(f.revokes) != 0 || f.signs[len(f.signs)-1].Subject != "" {
		t.Errorf("revoked without a token or subject: %+v; last Sign %+v", f.revokes, f.signs[len(f.signs)-1])
	}
}
