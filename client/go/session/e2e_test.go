package session_test

// The net/http journey against the real sessiontoken-server binary: real HTTP requests with
// cookies to a real net/http server on 127.0.0.1. login -> the session persists -> rotate
// through the admin API -> the old cookie is still accepted and re-issued under the new key
// id -> tampered, foreign and malformed cookies give an empty session -> logout deletes the
// cookie -> the service stops -> requests fail closed (empty session, error logged without
// any cookie value, the browser's cookie untouched) and are still answered.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiontoken"
	"sessiontoken/session"
	"sessiontoken/sessiontest"
)

const (
	keyring  = "default"
	audience = "shop:session"
	ttl      = time.Hour
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// app is the web application under test.
func app(mw *session.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s := session.Get(r)
		json.NewEncoder(w).Encode(map[string]any{"session": s.Values(), "unverified": s.Unverified()})
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s := session.Get(r)
		s.Regenerate()
		s.Set("user", r.URL.Query().Get("user"))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/counter", func(w http.ResponseWriter, r *http.Request) {
		s := session.Get(r)
		n := 0
		if v, ok := s.Get("n"); ok {
			i, _ := v.(json.Number).Int64()
			n = int(i)
		}
		s.Set("n", n+1)
		fmt.Fprintf(w, "%d", n+1)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		session.Get(r).Set("blob", strings.Repeat("x", 3000))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		session.Get(r).Destroy()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/logout-here", func(w http.ResponseWriter, r *http.Request) {
		res, err := session.Get(r).Logout(r.Context())
		revoked(w, res, err)
	})
	mux.HandleFunc("/logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		res, err := session.Get(r).LogoutEverywhere(r.Context())
		revoked(w, res, err)
	})
	return mw.Handler(mux)
}

// revoked answers a logout: {"revoked": bool, "error": the gRPC code if the revocation failed}.
func revoked(w http.ResponseWriter, res *sessiontoken.RevokeResult, err error) {
	out := map[string]any{"revoked": res != nil && !res.RevokedAt.IsZero()}
	if err != nil {
		out["error"] = sessiontoken.Code(err).String()
	}
	json.NewEncoder(w).Encode(out)
}

// response is what the browser sees: status, body and the session's Set-Cookie (if any).
type response struct {
	status    int
	body      string
	setCookie string // the raw Set-Cookie of the session cookie, "" if none
	value     string // its value
}

func do(t *testing.T, base, path, cookie string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "session="+cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, body: string(body)}
	for _, sc := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "session=") {
			if out.setCookie != "" {
				t.Fatalf("two session cookies: %q and %q", out.setCookie, sc)
			}
			out.setCookie = sc
			out.value = strings.SplitN(strings.TrimPrefix(sc, "session="), ";", 2)[0]
		}
	}
	return out
}

func whoami(t *testing.T, base, cookie string) (map[string]any, bool, response) {
	t.Helper()
	r := do(t, base, "/whoami", cookie)
	var v struct {
		Session    map[string]any `json:"session"`
		Unverified bool           `json:"unverified"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("whoami: %v: %q", err, r.body)
	}
	return v.Session, v.Unverified, r
}

func tokenOf(t *testing.T, r response) sessiontoken.NativeToken {
	t.Helper()
	if r.setCookie == "" {
		t.Fatal("expected a Set-Cookie for the session cookie")
	}
	tok, ok := sessiontoken.ParseNativeToken(r.value)
	if !ok {
		t.Fatalf("the session cookie is not a native token")
	}
	return tok
}

// forgePayload replaces a genuine token's payload and keeps its MAC, as a user editing the
// cookie would (the payload is readable, not encrypted).
func forgePayload(token, payload string) string {
	body, _ := base64.RawURLEncoding.DecodeString(token[4:])
	parsed, _ := sessiontoken.ParseNativeToken(token)
	header := len(body) - 32 - len(parsed.Payload) // st1: 24 bytes; st2: with subject and token id
	forged := append(append(append([]byte(nil), body[:header]...), payload...), body[len(body)-32:]...)
	return token[:4] + base64.RawURLEncoding.EncodeToString(forged)
}

func TestJourney(t *testing.T) {
	srv := sessiontest.Start(t)
	client, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	logs := &syncBuffer{}
	mw, err := session.New(session.Options{Client: client, Keyring: keyring, Audience: audience,
		TTL: ttl, Logger: log.New(logs, "", 0), Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(app(mw))
	defer web.Close()
	ctx := context.Background()

	// No cookie: an empty session and no Set-Cookie.
	if s, _, r := whoami(t, web.URL, ""); len(s) != 0 || r.setCookie != "" {
		t.Fatalf("no cookie: session %v, Set-Cookie %q", s, r.setCookie)
	}

	// Login: a cookie signed under the primary key, with the default attributes.
	firstKey, err := client.PrimaryKeyID(ctx, keyring)
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, web.URL, "/login?user=alice", "")
	tok := tokenOf(t, r)
	if tok.KeyID != firstKey || tok.ExpiresAt-tok.IssuedAt != int64(ttl/time.Second) ||
		string(tok.Payload) != `{"user":"alice"}` || tok.AudienceTag != sessiontoken.NativeAudienceTag(audience) {
		t.Errorf("login token: key %d (primary %d), lifetime %d s, payload %s",
			tok.KeyID, firstKey, tok.ExpiresAt-tok.IssuedAt, tok.Payload)
	}
	wantAttrs := "; Path=/; HttpOnly; SameSite=Lax"
	if !strings.HasSuffix(r.setCookie, wantAttrs) || strings.Contains(r.setCookie, "Max-Age") ||
		strings.Contains(r.setCookie, "Secure") {
		t.Errorf("login Set-Cookie attributes: %q", strings.TrimPrefix(r.setCookie, "session="+r.value))
	}
	cookie := r.value

	// The session persists; an unchanged session sets no cookie; a change re-signs it.
	if s, _, r := whoami(t, web.URL, cookie); s["user"] != "alice" || r.setCookie != "" {
		t.Fatalf("persist: session %v, Set-Cookie %v", s, r.setCookie != "")
	}
	for want := 1; want <= 2; want++ {
		r = do(t, web.URL, "/counter", cookie)
		if r.body != fmt.Sprint(want) {
			t.Fatalf("counter: %q, want %d", r.body, want)
		}
		tokenOf(t, r)
		cookie = r.value
	}
	if s, _, _ := whoami(t, web.URL, cookie); s["user"] != "alice" || s["n"] != float64(2) {
		t.Fatalf("after counter: %v", s)
	}

	// Rotate: the old cookie stays valid and is re-issued under the new primary key, once.
	rot, err := client.Rotate(ctx, keyring, false)
	if err != nil {
		t.Fatal(err)
	}
	if primary, _ := client.PrimaryKeyID(ctx, keyring); rot.NewKeyID == firstKey || primary != rot.NewKeyID {
		t.Fatalf("rotate: new key %d, primary %d, first %d", rot.NewKeyID, primary, firstKey)
	}
	if v, err := client.Verify(ctx, sessiontoken.VerifyRequest{Token: cookie, Audience: audience}); err != nil ||
		!v.Valid || !v.RefreshRecommended {
		t.Fatalf("old cookie after rotate: %+v %v", v, err)
	}
	s, _, r := whoami(t, web.URL, cookie)
	if s["user"] != "alice" || s["n"] != float64(2) {
		t.Fatalf("old cookie after rotate: session %v", s)
	}
	if tok := tokenOf(t, r); tok.KeyID != rot.NewKeyID || string(tok.Payload) != `{"n":2,"user":"alice"}` {
		t.Fatalf("re-issued token: key %d (want %d), payload %s", tok.KeyID, rot.NewKeyID, tok.Payload)
	}
	cookie = r.value
	if _, _, r := whoami(t, web.URL, cookie); r.setCookie != "" {
		t.Fatal("a token of the primary key is re-issued again")
	}

	// Tampered, foreign-audience, non-JSON and malformed cookies: empty session, cookie left alone.
	forged := forgePayload(cookie, `{"n":2,"user":"admin"}`)
	if v, _ := client.Verify(ctx, sessiontoken.VerifyRequest{Token: forged, Audience: audience}); v.Result != "BAD_SIGNATURE" {
		t.Fatalf("forged: %s", v.Result)
	}
	foreign, err := client.Sign(ctx, sessiontoken.SignRequest{Payload: []byte(`{"user":"mallory"}`), TTL: time.Minute, Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}
	notJSON, err := client.Sign(ctx, sessiontoken.SignRequest{Payload: []byte("user=42"), TTL: time.Minute, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]string{"forged": forged, "foreign": foreign.Token,
		"not JSON": notJSON.Token, "garbage": "garbage", "too long": strings.Repeat("A", 5000)} {
		if s, unverified, r := whoami(t, web.URL, c); len(s) != 0 || unverified || r.setCookie != "" {
			t.Errorf("%s cookie: session %v, unverified %v, Set-Cookie %v", name, s, unverified, r.setCookie != "")
		}
	}
	for _, want := range []string{"rejected: BAD_SIGNATURE", "rejected: WRONG_AUDIENCE",
		"not a JSON object", "rejected: MALFORMED", "longer than 4095"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "error:") {
		t.Errorf("errors logged before the outage:\n%s", logs.String())
	}

	// A session too large to sign is not saved, and its cookie is deleted rather than left
	// holding the previous state.
	r = do(t, web.URL, "/big", cookie)
	if r.status != http.StatusOK || !strings.HasPrefix(r.setCookie, "session=; Max-Age=0; ") ||
		!strings.Contains(logs.String(), "session not saved, cookie deleted: session too large (3") {
		t.Fatalf("too large: %d, Set-Cookie %q, log:\n%s", r.status, r.setCookie, logs.String())
	}

	// Logout deletes the cookie.
	r = do(t, web.URL, "/logout", cookie)
	if r.status != http.StatusNoContent || !strings.HasPrefix(r.setCookie, "session=; Max-Age=0; ") {
		t.Fatalf("logout: %d, Set-Cookie %q", r.status, r.setCookie)
	}

	// The service goes down: fail closed, logged, the cookie untouched, nothing secret logged.
	r = do(t, web.URL, "/login?user=bob", "")
	bob := r.value
	tokenOf(t, r)
	srv.Stop()
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	s, unverified, r := whoami(t, web.URL, bob)
	if r.status != http.StatusOK || len(s) != 0 || !unverified || r.setCookie != "" {
		t.Fatalf("service down: %d, session %v, unverified %v, Set-Cookie %v", r.status, s, unverified, r.setCookie != "")
	}
	r = do(t, web.URL, "/counter", bob) // a change to an unverified session is not saved
	if r.body != "1" || r.setCookie != "" {
		t.Fatalf("service down, change: %q, Set-Cookie %v", r.body, r.setCookie != "")
	}
	r = do(t, web.URL, "/login?user=carol", bob) // a login cannot sign: no cookie, logged
	if r.status != http.StatusOK || r.setCookie != "" {
		t.Fatalf("service down, login: %d, Set-Cookie %q", r.status, r.setCookie)
	}
	out := logs.String()
	for _, want := range []string{"cannot verify the session cookie, using an empty session",
		"Unavailable", "the cookie is left unchanged", "session not saved"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{bob, bob[4:24], cookie[4:24], forged[4:24]} {
		if strings.Contains(out, secret) {
			t.Errorf("a cookie value was logged:\n%s", out)
		}
	}
}

// RefreshAfter (rolling expiry): an unchanged session is re-signed once its token is that old,
// and not before.
func TestRefreshAfter(t *testing.T) {
	srv := sessiontest.Start(t)
	client, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const after = 3 * time.Second
	mw, err := session.New(session.Options{Client: client, Keyring: keyring, Audience: audience,
		TTL: ttl, RefreshAfter: after, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(app(mw))
	defer web.Close()
	r := do(t, web.URL, "/login?user=alice", "")
	issued := time.Unix(tokenOf(t, r).IssuedAt, 0)
	cookie := r.value
	// issued_at is whole seconds, so the token is at most 1 s + this request old: under 3 s
	// unless the machine stalls for 2 s (then the check is skipped, not failed).
	_, _, r = whoami(t, web.URL, cookie)
	if time.Since(issued) < after-100*time.Millisecond && r.setCookie != "" {
		t.Errorf("re-signed a %v old token", time.Since(issued))
	}
	time.Sleep(time.Until(issued.Add(after + 200*time.Millisecond)))
	s, _, r := whoami(t, web.URL, cookie)
	if s["user"] != "alice" {
		t.Fatalf("session %v", s)
	}
	if tok := tokenOf(t, r); tok.IssuedAt < issued.Unix()+int64(after/time.Second) {
		t.Errorf("re-issued token issued at %d, want >= %d", tok.IssuedAt, issued.Unix()+3)
	}
}

// stopBeforeRevoke is the client, except that the service goes away just before Revoke.
type stopBeforeRevoke struct {
	*sessiontoken.Client
	stop func()
}

func (s stopBeforeRevoke) Revoke(ctx context.Context, r sessiontoken.RevokeRequest) (sessiontoken.RevokeResult, error) {
	s.stop()
	return s.Client.Revoke(ctx, r)
}

// Revocation with SubjectKey: log in as the same user on two devices (and as another user on a
// third), log out everywhere on one: the other device's cookie is refused on its next request,
// the other user is untouched and a new login works; logout revokes the current cookie (a
// replayed copy is refused); with the service down, logout still deletes the cookie.
func TestRevocationJourney(t *testing.T) {
	srv := sessiontest.Start(t)
	client, err := sessiontoken.New(sessiontoken.Options{Address: srv.Address, Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	logs := &syncBuffer{}
	mw, err := session.New(session.Options{Client: client, Keyring: keyring, Audience: audience,
		TTL: ttl, SubjectKey: "user", Logger: log.New(logs, "", 0), Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(app(mw))
	defer web.Close()
	ctx := context.Background()
	login := func(user string) string {
		t.Helper()
		r := do(t, web.URL, "/login?user="+user, "")
		if tok := tokenOf(t, r); string(tok.Subject) != user || tok.Version != 2 {
			t.Fatalf("login token: version %d, subject %q, want %q", tok.Version, tok.Subject, user)
		}
		return r.value
	}
	user := func(cookie string) any {
		t.Helper()
		s, _, _ := whoami(t, web.URL, cookie)
		return s["user"]
	}

	phone, laptop, other := login("alice"), login("alice"), login("bob")
	if v, err := client.Verify(ctx, sessiontoken.VerifyRequest{Token: laptop, Audience: audience}); err != nil ||
		!v.Valid || v.Subject != "alice" {
		t.Fatalf("laptop cookie: %+v %v", v, err)
	}
	r := do(t, web.URL, "/logout-everywhere", phone)
	if r.body != "{\"revoked\":true}\n" || !strings.HasPrefix(r.setCookie, "session=; Max-Age=0; ") {
		t.Fatalf("logout everywhere: %q, Set-Cookie %q", r.body, r.setCookie)
	}
	s, unverified, r := whoami(t, web.URL, laptop)
	if len(s) != 0 || unverified || r.setCookie != "" {
		t.Errorf("the other device after logout everywhere: session %v, unverified %v, Set-Cookie %q", s, unverified, r.setCookie)
	}
	if v, _ := client.Verify(ctx, sessiontoken.VerifyRequest{Token: laptop, Audience: audience}); v.Result != "REVOKED" {
		t.Errorf("laptop cookie after logout everywhere: %s", v.Result)
	}
	if !strings.Contains(logs.String(), "rejected: REVOKED") {
		t.Errorf("log lacks the rejection:\n%s", logs.String())
	}
	if user(other) != "bob" {
		t.Error("another user's session was revoked")
	}
	time.Sleep(1100 * time.Millisecond) // whole seconds: a token of the cutoff second is revoked
	if again := login("alice"); user(again) != "alice" {
		t.Error("a login after logout everywhere is refused")
	}

	// Logout revokes this cookie: the same value replayed (stolen) gives an empty session.
	carol := login("carol")
	r = do(t, web.URL, "/logout-here", carol)
	if r.body != "{\"revoked\":true}\n" || !strings.HasPrefix(r.setCookie, "session=; Max-Age=0; ") {
		t.Fatalf("logout: %q, Set-Cookie %q", r.body, r.setCookie)
	}
	if s, _, _ := whoami(t, web.URL, carol); len(s) != 0 {
		t.Errorf("a logged-out cookie replayed: session %v", s)
	}
	// Logout without a valid cookie revokes nothing; log out everywhere without a subject fails
	// and changes nothing.
	if r = do(t, web.URL, "/logout-here", ""); r.body != "{\"revoked\":false}\n" {
		t.Errorf("logout without a cookie: %q", r.body)
	}
	counter := do(t, web.URL, "/counter", "").value
	if r = do(t, web.URL, "/logout-everywhere", counter); r.body != "{\"error\":\"Unknown\",\"revoked\":false}\n" || r.setCookie != "" {
		t.Errorf("logout everywhere without a subject: %q, Set-Cookie %q", r.body, r.setCookie)
	}

	// The service goes down between Verify and Revoke: the cookie is deleted anyway, the
	// handler gets the error, it is logged without the cookie's value.
	down := sessiontest.Start(t)
	downClient, err := sessiontoken.New(sessiontoken.Options{Address: down.Address, Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	defer downClient.Close()
	downLogs := &syncBuffer{}
	downMw, err := session.New(session.Options{Client: stopBeforeRevoke{downClient, down.Stop}, Keyring: keyring,
		Audience: audience, TTL: ttl, SubjectKey: "user", Deadline: 3 * time.Second, Logger: log.New(downLogs, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	downWeb := httptest.NewServer(app(downMw))
	defer downWeb.Close()
	dave := do(t, downWeb.URL, "/login?user=dave", "").value
	r = do(t, downWeb.URL, "/logout-here", dave)
	var got struct {
		Revoked bool
		Error   string
	}
	json.Unmarshal([]byte(r.body), &got)
	if got.Revoked || (got.Error != "Unavailable" && got.Error != "DeadlineExceeded") ||
		!strings.HasPrefix(r.setCookie, "session=; Max-Age=0; ") {
		t.Errorf("logout, service down: %q, Set-Cookie %q", r.body, r.setCookie)
	}
	if out := downLogs.String(); !strings.Contains(out, "error: sessiontoken.session[session]: logout: not revoked (the cookie is deleted anyway)") ||
		strings.Contains(out, dave[4:24]) {
		t.Errorf("logout, service down: log:\n%s", out)
	}
	for _, c := range []string{phone, laptop, carol} {
		if strings.Contains(logs.String(), c[4:24]) {
			t.Errorf("a cookie value was logged:\n%s", logs.String())
		}
	}
}
