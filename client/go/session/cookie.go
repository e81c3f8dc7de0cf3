package session

// The session cookie's attributes and its Set-Cookie values (RFC 6265), written by hand
// because net/http's Cookie of Go 1.19 has no Partitioned attribute.

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SecureMode chooses the cookie's Secure attribute.
type SecureMode int

const (
	// SecureAuto sets Secure when the request came over TLS (r.TLS != nil). Behind a proxy
	// that terminates TLS use SecureAlways.
	SecureAuto SecureMode = iota
	SecureAlways
	SecureNever
)

// CookieOptions are the session cookie's attributes. The zero value gives
// "Path=/; HttpOnly; SameSite=Lax", Secure on TLS requests, and a browser-session cookie (no
// Max-Age), as the Express middleware and express-session do.
type CookieOptions struct {
	Path        string        // default "/"
	Domain      string        // default: none (host-only cookie)
	MaxAge      time.Duration // 0: a browser-session cookie; whole seconds
	Secure      SecureMode
	NoHTTPOnly  bool          // HttpOnly is set unless this is true
	SameSite    http.SameSite // default (0 or SameSiteDefaultMode): Lax
	Partitioned bool          // CHIPS; needs Secure in browsers
}

func validAttr(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == ';' || c > 0x7e {
			return false
		}
	}
	return true
}

// validName: an RFC 7230 token.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validValue: cookie-octet*.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c == '"' || c == ',' || c == ';' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

func (o *CookieOptions) normalize() error {
	if o.Path == "" {
		o.Path = "/"
	}
	if !validAttr(o.Path) || !validAttr(o.Domain) {
		return fmt.Errorf("session: invalid cookie Path or Domain")
	}
	if o.MaxAge < 0 || o.MaxAge%time.Second != 0 {
		return fmt.Errorf("session: Cookie.MaxAge must be whole seconds >= 0")
	}
	if o.SameSite == 0 || o.SameSite == http.SameSiteDefaultMode {
		o.SameSite = http.SameSiteLaxMode
	}
	if o.SameSite < http.SameSiteDefaultMode || o.SameSite > http.SameSiteNoneMode {
		return fmt.Errorf("session: Cookie.SameSite: unknown value %d", o.SameSite)
	}
	return nil
}

func (o *CookieOptions) secureFor(r *http.Request) bool {
	switch o.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil
}

func (o *CookieOptions) attributes(secure bool) string {
	var b strings.Builder
	if o.Domain != "" {
		b.WriteString("; Domain=" + o.Domain)
	}
	b.WriteString("; Path=" + o.Path)
	if !o.NoHTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if secure {
		b.WriteString("; Secure")
	}
	if o.Partitioned {
		b.WriteString("; Partitioned")
	}
	switch o.SameSite {
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	default:
		b.WriteString("; SameSite=Lax")
	}
	return b.String()
}

// setCookie is the Set-Cookie value that stores value (a token: base64url and '.').
func (o *CookieOptions) setCookie(name, value string, secure bool, now time.Time) (string, error) {
	if !validValue(value) {
		return "", fmt.Errorf("invalid cookie value")
	}
	s := name + "=" + value
	if o.MaxAge > 0 {
		s += fmt.Sprintf("; Max-Age=%d; Expires=%s", int64(o.MaxAge/time.Second),
			now.Add(o.MaxAge).UTC().Format(http.TimeFormat))
	}
	return s + o.attributes(secure), nil
}

// clearCookie is the Set-Cookie value that deletes the cookie (same Domain and Path).
func (o *CookieOptions) clearCookie(name string, secure bool) string {
	return name + "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + o.attributes(secure)
}
