<?php
// Client of the sessiontoken HTTP/JSON gateway (sessiontoken-server --http_listen): Sign,
// Verify and Revoke over HTTP with php-curl. Bodies are protobuf's JSON mapping of the service's
// messages (docs/http-gateway.md). Deadline per call; one retry when the service is
// unavailable (no answer, or 503), as the gRPC clients' service config does.
declare(strict_types=1);

namespace SessionToken;

final class Client
{
    private string $baseUrl;
    private ?string $bearerToken;
    private int $timeoutMs;
    private int $attempts;
    /** @var array<int, mixed> curl TLS options (CA file, client certificate) */
    private array $tlsOptions = [];
    /** @var \CurlHandle|null reused: keeps the connection alive across calls */
    private $curl = null;

    /**
     * @param string $baseUrl e.g. "http://127.0.0.1:8080" (the server's --http_listen), or
     *   "https://host:port" when the server has TLS (--tls_cert/--tls_key)
     * @param array{token?: ?string, timeoutMs?: int, attempts?: int, caFile?: ?string,
     *              certFile?: ?string, keyFile?: ?string} $options
     *   token: API token sent as "Authorization: Bearer <token>" (the server's auth.api_tokens);
     *   timeoutMs: deadline of one attempt (default 1000); attempts: at most this many tries
     *   when the service is unavailable (default 2);
     *   caFile: PEM CA bundle that signed the server's certificate (https; default: the
     *   system's); certFile + keyFile: PEM client certificate and key, for a server with
     *   client certificates (--tls_client_ca, mTLS). The server's certificate and host name
     *   are always verified.
     */
    public function __construct(string $baseUrl, array $options = [])
    {
        if (!preg_match('#^https?://[^/]+$#', rtrim($baseUrl, '/'))) {
            throw new \InvalidArgumentException('sessiontoken: baseUrl must be http(s)://host:port');
        }
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->bearerToken = $options['token'] ?? null;
        $this->timeoutMs = (int)($options['timeoutMs'] ?? 1000);
        $this->attempts = max(1, (int)($options['attempts'] ?? 2));
        $this->tlsOptions = self::tlsOptions($options);
    }

    /** @return array<int, mixed> */
    private static function tlsOptions(array $options): array
    {
        $tls = [CURLOPT_SSL_VERIFYPEER => true, CURLOPT_SSL_VERIFYHOST => 2];
        foreach (['caFile' => CURLOPT_CAINFO, 'certFile' => CURLOPT_SSLCERT,
                  'keyFile' => CURLOPT_SSLKEY] as $name => $opt) {
            $file = $options[$name] ?? null;
            if ($file === null) {
                continue;
            }
            if (!is_readable((string)$file)) {
                throw new \InvalidArgumentException("sessiontoken: $name: cannot read $file");
            }
            $tls[$opt] = (string)$file;
        }
        if (isset($tls[CURLOPT_SSLCERT]) !== isset($tls[CURLOPT_SSLKEY])) {
            throw new \InvalidArgumentException('sessiontoken: certFile and keyFile go together');
        }
        return $tls;
    }

    /**
     * Signs $payload (bytes) with the keyring's primary key. $subject: whose session it is
     * (e.g. the user id): returned by verify, what revoke(subject: ...) matches.
     * @return array{token: string, keyId: int, issuedAt: int, expiresAt: int, tokenId: string}
     * @throws ServiceError
     */
    public function sign(string $keyring, string $payload, int $ttlSeconds, string $audience = '',
                         string $subject = ''): array
    {
        $body = ['payload' => base64_encode($payload), 'ttl' => $ttlSeconds . 's', 'audience' => $audience];
        if ($subject !== '') {
            $body['subject'] = $subject;
        }
        $r = $this->call($keyring, 'sign', $body);
        return [
            'token' => (string)($r['token'] ?? ''),
            'keyId' => (int)($r['keyId'] ?? 0),
            'issuedAt' => self::seconds($r['issuedAt'] ?? null),
            'expiresAt' => self::seconds($r['expiresAt'] ?? null),
            'tokenId' => (string)($r['tokenId'] ?? ''),
        ];
    }

    /**
     * Revokes one session ($token, with the $audience it was signed for) or every session of
     * $subject issued until now ("log out everywhere"); exactly one of them. Verify then
     * answers REVOKED. A token that does not verify is INVALID_ARGUMENT; revoking a token
     * again succeeds. Unix times: revokedAt, and dropAfter (when the entry is dropped).
     * @return array{revokedAt: int, dropAfter: int}
     * @throws ServiceError
     */
    public function revoke(string $keyring, ?string $token = null, string $audience = '', ?string $subject = null): array
    {
        $token = $token === '' ? null : $token;
        $subject = $subject === '' ? null : $subject;
        if (($token === null) === ($subject === null)) {
            throw new \InvalidArgumentException('sessiontoken: revoke needs exactly one of token and subject');
        }
        $body = $token !== null ? ['token' => $token, 'audience' => $audience] : ['subject' => $subject];
        $r = $this->call($keyring, 'revoke', $body);
        return [
            'revokedAt' => self::seconds($r['revokedAt'] ?? null),
            'dropAfter' => self::seconds($r['dropAfter'] ?? null),
        ];
    }

    /**
     * Checks a token. An invalid token is a normal answer (valid false, result says why:
     * MALFORMED, BAD_SIGNATURE, EXPIRED..., REVOKED for a revoked session). payload and
     * subject are set only when valid; tokenId for v2 tokens.
     * @return array{valid: bool, result: string, payload: string, keyId: int, issuedAt: int,
     *               expiresAt: int, refreshRecommended: bool, subject: string, tokenId: string}
     * @throws ServiceError
     */
    public function verify(string $keyring, string $token, string $audience = '', ?int $maxAgeSeconds = null): array
    {
        $body = ['token' => $token, 'audience' => $audience];
        if ($maxAgeSeconds !== null) {
            $body['maxAge'] = $maxAgeSeconds . 's';
        }
        $r = $this->call($keyring, 'verify', $body);
        $result = (string)($r['result'] ?? 'RESULT_UNSPECIFIED');
        return [
            'valid' => $result === 'VALID',
            'result' => $result,
            'payload' => $result === 'VALID' ? (string)base64_decode((string)($r['payload'] ?? ''), true) : '',
            'keyId' => (int)($r['keyId'] ?? 0),
            'issuedAt' => self::seconds($r['issuedAt'] ?? null),
            'expiresAt' => self::seconds($r['expiresAt'] ?? null),
            'refreshRecommended' => (bool)($r['refreshRecommended'] ?? false),
            'subject' => $result === 'VALID' ? (string)($r['subject'] ?? '') : '',
            'tokenId' => (string)($r['tokenId'] ?? ''),
        ];
    }

    private static function seconds(?string $rfc3339): int
    {
        if ($rfc3339 === null || $rfc3339 === '') {
            return 0;
        }
        $t = strtotime($rfc3339);
        return $t === false ? 0 : $t;
    }

    /** POST /v1/keyrings/{keyring}:{verb}; the decoded JSON answer. */
    private function call(string $keyring, string $verb, array $body): array
    {
        $url = $this->baseUrl . '/v1/keyrings/' . rawurlencode($keyring) . ':' . $verb;
        $json = json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
        $error = null;
        for ($i = 0; $i < $this->attempts; $i++) {
            try {
                return $this->post($url, $json);
            } catch (ServiceError $e) {
                $error = $e;
                if ($e->grpcCode !== 'UNAVAILABLE') {
                    throw $e;
                }
                usleep(50000 * ($i + 1));
            }
        }
        throw $error;
    }

    private function post(string $url, string $json): array
    {
        if ($this->curl === null) {
            $this->curl = curl_init();
        }
        $h = $this->curl;
        $headers = ['Content-Type: application/json', 'Accept: application/json'];
        if ($this->bearerToken !== null) {
            $headers[] = 'Authorization: Bearer ' . $this->bearerToken;
        }
        curl_setopt_array($h, [
            CURLOPT_URL => $url,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $json,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => $this->timeoutMs,
            CURLOPT_CONNECTTIMEOUT_MS => $this->timeoutMs,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_PROXY => '',  // never through an HTTP proxy from the environment
        ] + $this->tlsOptions);
        $out = curl_exec($h);
        if ($out === false) {
            $what = curl_errno($h) === CURLE_OPERATION_TIMEDOUT ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE';
            // curl's message names the host, never the request body.
            $message = 'sessiontoken gateway: ' . curl_error($h);
            curl_close($h);
            $this->curl = null;
            throw new ServiceError($what, $message);
        }
        $status = (int)curl_getinfo($h, CURLINFO_RESPONSE_CODE);
        $decoded = json_decode((string)$out, true);
        if ($status !== 200) {
            $code = is_array($decoded) && isset($decoded['code']) ? (string)$decoded['code']
                : ($status === 503 ? 'UNAVAILABLE' : 'UNKNOWN');
            $message = is_array($decoded) && isset($decoded['message']) ? (string)$decoded['message']
                : "HTTP $status";
            throw new ServiceError($code, $message, $status);
        }
        if (!is_array($decoded)) {
            throw new ServiceError('INTERNAL', 'sessiontoken gateway: the answer is not JSON', $status);
        }
        return $decoded;
    }
}
