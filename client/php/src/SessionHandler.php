<?php
// PHP sessions whose data lives in a cookie signed by the sessiontoken service, so that
// session_start() and $_SESSION work without a secret key in the app and without server-side
// session storage. The cookie value IS the token: PHP's session id is only an internal,
// random placeholder that never leaves the server (session.use_cookies=0); this handler
// reads the cookie itself, verifies it over the HTTP/JSON gateway, and writes the cookie
// itself just before the response headers go out (header_register_callback).
//
// Same rules as the Flask session interface and the Express middleware (client/node):
//   * the session is stored as JSON (interoperable with the other frontends): values must be
//     arrays and scalars; objects are refused (logged, not saved);
//   * the cookie is written only when the session changed during the request, or when Verify
//     says refresh_recommended (the key was rotated out: re-issued under the new primary);
//   * a session that had data and was emptied, or session_destroy(), deletes the cookie;
//   * a missing, tampered, expired, wrong-audience... cookie gives an empty session and is
//     left alone;
//   * fail closed: when the service cannot be reached or errors, the session is empty (an
//     unverified cookie is never trusted), the error is logged and the request goes on;
//     that cookie is neither replaced nor deleted, unless the app calls
//     session_regenerate_id() (a login) or session_destroy() (a logout);
//   * a session larger than maxPayloadBytes, or one Sign refuses, is not saved (logged); if
//     it was changed, the cookie is deleted so that the previous state is not left behind;
//   * cookie attributes are configurable; cookie values are never logged;
//   * revocation (the service's Revoke): with subjectKey (e.g. 'user_id'), every token is
//     signed with $_SESSION[subjectKey] (a string or number) as its subject. logout()
//     revokes the token the request came with and destroys the session (the cookie is
//     deleted); logoutEverywhere() revokes every session of the subject issued until now
//     ("log out everywhere": the cookies of other devices are REVOKED on their next request)
//     and destroys the session. Both delete the cookie even when the revocation fails; the
//     ServiceError is then logged and thrown. A REVOKED cookie gives an empty session.
// Changes made to $_SESSION after the headers went out cannot reach the browser: they are
// logged as a warning (call session_write_close() or finish with the session before output).
declare(strict_types=1);

namespace SessionToken;

final class SessionHandler implements \SessionHandlerInterface, \SessionIdInterface
{
    /** The service's default limit of a native token's payload (server flag max_payload_bytes). */
    public const DEFAULT_MAX_PAYLOAD_BYTES = 2048;
    /** No token of any format is longer (docs/token-format.md). */
    private const MAX_TOKEN_CHARS = 4095;

    private Client $client;
    private string $keyring;
    private string $audience;
    private string $cookieName;
    private int $ttlSeconds;
    private int $maxAgeSeconds;
    private ?int $refreshAfterSeconds;
    private ?int $maxPayloadBytes;
    /** @var array{path: string, domain: string, secure: bool|string, httponly: bool, samesite: string, maxAge: ?int} */
    private array $cookie;
    /** @var callable(string, string): void */
    private $logger;
    private ?string $subjectKey;

    // Per-request state.
    private bool $loaded = false;
    private string $initial = '{}';    // the session as the request's cookie held it (JSON)
    private bool $hadCookie = false;
    private bool $refresh = false;
    private bool $unverified = false;  // the cookie could not be checked: never touch it
    private bool $regenerated = false; // session_regenerate_id() or a restart after destroy
    private bool $destroyed = false;
    private ?string $written = null;   // last data PHP asked to write (php_serialize)
    private bool $emitted = false;     // the response headers are decided
    private ?string $emittedJson = null;
    private ?string $token = null;     // the valid token the request came with (what logout revokes)

    /**
     * @param array $options keyring (required), audience (required, may be ''),
     *   cookieName ('session'), ttlSeconds (86400), maxAgeSeconds (= ttlSeconds),
     *   refreshAfterSeconds (null: re-sign an unchanged session only on refresh_recommended),
     *   maxPayloadBytes (2048; null: no local check), cookie: [path '/', domain '',
     *   secure 'auto'|true|false, httponly true, samesite 'Lax', maxAge null (a browser-session
     *   cookie) or seconds], logger: callable(string $level, string $message),
     *   subjectKey (null: off; the $_SESSION key holding the user id, sent as Sign's subject).
     */
    public function __construct(Client $client, array $options)
    {
        $known = ['keyring', 'audience', 'cookieName', 'ttlSeconds', 'maxAgeSeconds',
            'refreshAfterSeconds', 'maxPayloadBytes', 'cookie', 'logger', 'subjectKey'];
        foreach (array_keys($options) as $k) {
            if (!in_array($k, $known, true)) {
                throw new \InvalidArgumentException("sessiontoken: unknown option '$k'");
            }
        }
        if (!isset($options['keyring']) || !is_string($options['keyring']) || $options['keyring'] === '') {
            throw new \InvalidArgumentException('sessiontoken: option keyring required');
        }
        if (!array_key_exists('audience', $options) || !is_string($options['audience'])) {
            throw new \InvalidArgumentException("sessiontoken: option audience required (a string naming this cookie's purpose; may be '')");
        }
        $this->client = $client;
        $this->keyring = $options['keyring'];
        $this->audience = $options['audience'];
        $this->cookieName = $options['cookieName'] ?? 'session';
        if (!preg_match('/^[A-Za-z0-9!#$%&\'*+\-^_`|~]+$/', $this->cookieName) || str_contains($this->cookieName, '.')) {
            throw new \InvalidArgumentException('sessiontoken: cookieName must be a cookie token without dots');
        }
        $this->ttlSeconds = self::positive($options['ttlSeconds'] ?? 86400, 'ttlSeconds');
        $this->maxAgeSeconds = self::positive($options['maxAgeSeconds'] ?? $this->ttlSeconds, 'maxAgeSeconds');
        $this->refreshAfterSeconds = isset($options['refreshAfterSeconds'])
            ? self::positive($options['refreshAfterSeconds'], 'refreshAfterSeconds') : null;
        if ($this->refreshAfterSeconds !== null && $this->refreshAfterSeconds >= $this->ttlSeconds) {
            throw new \InvalidArgumentException('sessiontoken: refreshAfterSeconds must be less than ttlSeconds');
        }
        $this->maxPayloadBytes = array_key_exists('maxPayloadBytes', $options)
            ? ($options['maxPayloadBytes'] === null ? null : self::positive($options['maxPayloadBytes'], 'maxPayloadBytes'))
            : self::DEFAULT_MAX_PAYLOAD_BYTES;
        $this->cookie = array_merge(
            ['path' => '/', 'domain' => '', 'secure' => 'auto', 'httponly' => true, 'samesite' => 'Lax', 'maxAge' => null],
            $options['cookie'] ?? []
        );
        if (!in_array($this->cookie['samesite'], ['Lax', 'Strict', 'None', ''], true)) {
            throw new \InvalidArgumentException('sessiontoken: cookie.samesite must be Lax, Strict, None or empty');
        }
        $this->subjectKey = $options['subjectKey'] ?? null;
        if ($this->subjectKey !== null && (!is_string($this->subjectKey) || $this->subjectKey === '')) {
            throw new \InvalidArgumentException('sessiontoken: subjectKey must be a non-empty string');
        }
        $this->logger = $options['logger'] ?? static function (string $level, string $message): void {
            if ($level !== 'debug') {
                error_log("sessiontoken [$level] $message");
            }
        };
    }

    /**
     * Installs the handler for this request: call it before session_start(). Sets the
     * session ini settings it needs (PHP must not send its own session cookie, and must
     * store the session as serialize()d arrays) and hooks the response headers.
     */
    public static function register(Client $client, array $options): self
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            throw new \LogicException('sessiontoken: register() must be called before session_start()');
        }
        $handler = new self($client, $options);
        ini_set('session.use_cookies', '0');
        ini_set('session.use_only_cookies', '1');
        ini_set('session.use_trans_sid', '0');
        ini_set('session.use_strict_mode', '0');
        ini_set('session.serialize_handler', 'php_serialize');
        ini_set('session.lazy_write', '0');
        ini_set('session.gc_probability', '0');
        session_set_save_handler($handler, true);
        header_register_callback([$handler, 'beforeHeaders']);
        return $handler;
    }

    private static function positive(mixed $v, string $name): int
    {
        if (!is_int($v) || $v <= 0) {
            throw new \InvalidArgumentException("sessiontoken: $name must be a positive integer");
        }
        return $v;
    }

    private function log(string $level, string $message): void
    {
        ($this->logger)($level, "sessiontoken.session[{$this->cookieName}]: $message");
    }

    // --- SessionHandlerInterface -----------------------------------------------------------

    public function open(string $path, string $name): bool
    {
        return true;
    }

    public function close(): bool
    {
        return true;
    }

    public function create_sid(): string
    {
        return bin2hex(random_bytes(16));  // internal only: never sent to the browser
    }

    public function read(string $id): string|false
    {
        if ($this->loaded) {
            // session_regenerate_id() (PHP keeps $_SESSION; what we return is discarded) or
            // session_start() again after session_destroy(): a new session, which may replace
            // even an unverified cookie.
            $this->regenerated = true;
            $this->destroyed = false;
            return serialize([]);
        }
        $this->loaded = true;
        $data = $this->load();
        $this->initial = self::toJson($data) ?? '{}';
        return serialize($data);
    }

    public function write(string $id, string $data): bool
    {
        $this->written = $data;
        // The cookie goes out with the headers: a change PHP asks to write after they were
        // sent cannot reach the browser.
        if (!$this->unverified && ($this->emitted || headers_sent())) {
            $json = $this->jsonOfSerialized($data, false);
            $sent = $this->emitted ? $this->emittedJson : $this->initial;
            if ($json !== null && $json !== $sent) {
                $this->log('warning', 'the session changed after the response headers were sent; change not saved');
            }
        }
        return true;
    }

    public function destroy(string $id): bool
    {
        $this->destroyed = true;
        $this->written = null;
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0;  // nothing is stored server-side
    }

    // --- the cookie --------------------------------------------------------------------------

    /** Reads and verifies the request's cookie. Never throws. */
    private function load(): array
    {
        $token = $_COOKIE[$this->cookieName] ?? null;
        if (!is_string($token) || $token === '') {
            return [];
        }
        $this->hadCookie = true;
        if (strlen($token) > self::MAX_TOKEN_CHARS) {
            $this->log('debug', 'session cookie rejected: longer than ' . self::MAX_TOKEN_CHARS . ' characters');
            return [];
        }
        try {
            $r = $this->client->verify($this->keyring, $token, $this->audience, $this->maxAgeSeconds);
        } catch (\Throwable $e) {
            $this->unverified = true;
            $this->log('error', 'cannot verify the session cookie, using an empty session: ' . $e->getMessage());
            return [];
        }
        if (!$r['valid']) {
            $this->log('debug', 'session cookie rejected: ' . $r['result']);
            return [];
        }
        $data = json_decode($r['payload'], true);
        if (!is_array($data) || !str_starts_with(ltrim($r['payload']), '{')) {
            $this->log('warning', 'valid token whose payload is not a JSON object; using an empty session');
            return [];
        }
        $this->token = $token;
        $this->refresh = $r['refreshRecommended'];
        if ($this->refreshAfterSeconds !== null && $r['issuedAt'] > 0) {
            $this->refresh = $this->refresh || time() - $r['issuedAt'] >= $this->refreshAfterSeconds;
        }
        return $data;
    }

    /** The subject of session data: its subjectKey value as a string, '' when none. */
    private function subjectOf(mixed $session): string
    {
        if ($this->subjectKey === null || !is_array($session)) {
            return '';
        }
        $v = $session[$this->subjectKey] ?? null;
        return is_string($v) || is_int($v) || is_float($v) ? (string)$v : '';
    }

    /**
     * Revokes the token this request came with (a copy of the cookie, replayed, is then
     * REVOKED) and destroys the session: the cookie is deleted even when the revocation
     * fails; the ServiceError is then logged and thrown. Returns null when the request had
     * no valid token (nothing to revoke), else revokedAt and dropAfter.
     * @return array{revokedAt: int, dropAfter: int}|null
     * @throws ServiceError
     */
    public function logout(): ?array
    {
        $token = $this->token;
        $this->destroySession();
        if ($token === null) {
            return null;
        }
        return $this->revoke('logout', fn () => $this->client->revoke($this->keyring, token: $token, audience: $this->audience));
    }

    /**
     * Revokes every session of this session's subject ($_SESSION[subjectKey]) issued until
     * now, on every device, and destroys the session (the cookie is deleted even when the
     * revocation fails; the ServiceError is then logged and thrown).
     * \LogicException, changing nothing, when the session has no subject.
     * @return array{revokedAt: int, dropAfter: int}
     * @throws ServiceError
     */
    public function logoutEverywhere(): array
    {
        $subject = $this->subjectOf($_SESSION ?? null);
        if ($subject === '') {
            throw new \LogicException('sessiontoken: logoutEverywhere: the session has no ' . ($this->subjectKey ?? 'subjectKey option'));
        }
        $this->destroySession();
        return $this->revoke('logout everywhere', fn () => $this->client->revoke($this->keyring, subject: $subject));
    }

    private function destroySession(): void
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            session_destroy();
        }
        $_SESSION = [];
        $this->destroyed = true;
        $this->token = null;
    }

    private function revoke(string $what, callable $call): array
    {
        try {
            return $call();
        } catch (\Throwable $e) {
            $this->log('error', "$what: not revoked (the cookie is deleted anyway): " . $e->getMessage());
            throw $e;
        }
    }

    /** The JSON of a session array, or null when it holds objects (not JSON data). */
    private static function toJson(array $session): ?string
    {
        $ok = true;
        array_walk_recursive($session, static function ($v) use (&$ok): void {
            if (is_object($v) || is_resource($v)) {
                $ok = false;
            }
        });
        if (!$ok) {
            return null;
        }
        try {
            return json_encode((object)$session, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES
                | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        } catch (\JsonException) {
            return null;
        }
    }

    /** The JSON of session data in PHP's php_serialize format; null (logged) when not savable. */
    private function jsonOfSerialized(string $data, bool $logErrors): ?string
    {
        $session = $data === '' ? [] : @unserialize($data, ['allowed_classes' => false]);
        $json = is_array($session) ? self::toJson($session) : null;
        if ($json === null && $logErrors) {
            $this->log('error', 'session not saved: $_SESSION must hold only arrays and scalars (JSON)');
        }
        return $json;
    }

    /** Called by PHP just before the response headers are sent: sets or deletes the cookie. */
    public function beforeHeaders(): void
    {
        if ($this->emitted || !$this->loaded) {
            return;
        }
        $this->emitted = true;
        if (session_status() === PHP_SESSION_ACTIVE) {
            $data = session_encode();
        } elseif ($this->destroyed) {
            $data = '';
        } else {
            $data = $this->written;  // after session_write_close()
        }
        if ($data === null || $data === false) {
            return;
        }
        $json = $this->jsonOfSerialized($data, true);
        $this->emittedJson = $json;
        if ($json === null) {
            return;
        }
        $this->decide($json);
    }

    private function decide(string $json): void
    {
        if ($this->unverified && !$this->regenerated && !$this->destroyed) {
            if ($json !== $this->initial) {
                $this->log('warning', "session not saved: the request's cookie could not be verified; the cookie is left unchanged");
            }
            return;
        }
        if ($json === '{}') {
            if ($this->initial !== '{}' || (($this->regenerated || $this->destroyed) && $this->hadCookie)) {
                $this->clearCookie();
            }
            return;
        }
        if ($json !== $this->initial || $this->refresh || $this->regenerated) {
            $this->sign($json, $json === $this->initial && !$this->regenerated);
        }
    }

    private function sign(string $json, bool $refreshOnly): void
    {
        $error = null;
        if ($this->maxPayloadBytes !== null && strlen($json) > $this->maxPayloadBytes) {
            $error = 'session too large: ' . strlen($json) . " bytes of JSON, limit {$this->maxPayloadBytes}";
        } else {
            try {
                $subject = $this->subjectOf(json_decode($json, true));
                $signed = $this->client->sign($this->keyring, $json, $this->ttlSeconds, $this->audience, $subject);
                $this->setCookie($signed['token']);
                return;
            } catch (\Throwable $e) {
                $error = 'cannot sign the session: ' . $e->getMessage();
            }
        }
        if ($refreshOnly || $this->unverified || !$this->hadCookie) {
            $kept = $this->hadCookie ? ' (the cookie is left unchanged)' : '';
            $this->log($refreshOnly ? 'warning' : 'error', "session not saved$kept: $error");
            return;
        }
        // A changed session that cannot be stored must not leave the previous state behind.
        $this->log('error', "session not saved, cookie deleted: $error");
        $this->clearCookie();
    }

    private function attributes(int $expires): array
    {
        $secure = $this->cookie['secure'];
        if ($secure === 'auto') {
            $secure = !empty($_SERVER['HTTPS']) && strtolower((string)$_SERVER['HTTPS']) !== 'off';
        }
        $a = ['expires' => $expires, 'path' => $this->cookie['path'], 'secure' => (bool)$secure,
            'httponly' => (bool)$this->cookie['httponly']];
        if ($this->cookie['domain'] !== '') {
            $a['domain'] = $this->cookie['domain'];
        }
        if ($this->cookie['samesite'] !== '') {
            $a['samesite'] = $this->cookie['samesite'];
        }
        return $a;
    }

    private function setCookie(string $token): void
    {
        $maxAge = $this->cookie['maxAge'];
        // Tokens are cookie-safe ASCII: sent as they are, not URL-encoded.
        setrawcookie($this->cookieName, $token, $this->attributes($maxAge === null ? 0 : time() + (int)$maxAge));
    }

    private function clearCookie(): void
    {
        setrawcookie($this->cookieName, '', $this->attributes(1));
    }
}
