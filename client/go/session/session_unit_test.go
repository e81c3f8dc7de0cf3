package session

// Cookie and refresh rules without a server: what decide() does for each case, the
// Set-Cookie values, option checks and the JSON round trip of a session.

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
