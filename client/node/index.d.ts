// Type declarations of the sessiontoken Node.js client (hand-written; the package ships
// plain JavaScript). Checked by `npm run typecheck` (tsc --noEmit, test/types-check.ts).

import type { ChannelCredentials, ChannelOptions, status as grpcStatus } from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Verify outcomes (sessiontoken.v1.VerifyResponse.Result). */
export type VerifyResultName =
  | 'VALID'
  | 'MALFORMED'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'KEY_DISABLED'
  | 'WRONG_AUDIENCE'
  | 'REVOKED'
  | 'RESULT_UNSPECIFIED'
  /** A value this client does not know yet: `RESULT_<number>`. Never valid. */
  | `RESULT_${number}`;

export type Algorithm = 'HMAC_SHA256' | 'HMAC_SHA1_FLASK';
export type KeyState = 'STAGED' | 'PRIMARY' | 'ACTIVE' | 'DISABLED' | 'DESTROYED';

export interface ClientOptions {
  /** host:port of the service. Default '127.0.0.1:50051'. */
  address?: string;
  /** Default: insecure (plaintext) credentials. */
  credentials?: ChannelCredentials;
  /** Keyring used by calls that name none. Default: none (every call must name one). */
  keyring?: string;
  /**
   * Deadline of every call, covering all attempts. Default: the method's timeout in the
   * service config (SessionTokens 2 s, KeyAdmin 10 s).
   */
  deadlineMs?: number;
  /**
   * gRPC service config (JSON text: deadlines and retries per method) replacing the shared
   * proto/sessiontoken/v1/service_config.json.
   */
  serviceConfig?: string;
  /** grpc-js channel options, merged over CHANNEL_DEFAULTS. */
  channelOptions?: ChannelOptions;
  /** Directory holding sessiontoken/v1/*.proto. Default: the repository's proto/ (or $SESSIONTOKEN_PROTO_DIR). */
  protoDir?: string;
  /** API token, sent as "authorization: Bearer <token>" on every call. */
  token?: string;
}

/** Per-call options. */
export interface CallOptions {
  /** Deadline of this call (all attempts), replacing the method's default. */
  deadlineMs?: number;
  /** Cancels the call (it rejects with CANCELLED). */
  signal?: AbortSignal;
}

export interface SignOptions {
  /** Default: the client's keyring. */
  keyring?: string;
  /** Opaque session data (strings are UTF-8). Default: empty. */
  payload?: Buffer | Uint8Array | string;
  /** Whole seconds, within the server's (and keyring's) range. */
  ttlSeconds: number;
  /** Purpose/audience bound into the MAC. Default ''. */
  audience?: string;
  /** Who the session belongs to (e.g. the user id, at most 128 bytes), bound into the token, returned by verify() and matched by revoke({subject}). Not for Flask-format keyrings. Default ''. */
  subject?: string;
}

export interface SignResult {
  /** The cookie-safe token ("st2." ...). */
  token: string;
  keyId: number;
  issuedAt: Date;
  expiresAt: Date;
  /** The token's random id (22 base64url characters); '' for Flask-format cookies. */
  tokenId: string;
}

export type RevokeOptions =
  | { token: string; audience?: string; keyring?: string; subject?: undefined }
  | { subject: string; keyring?: string; token?: undefined; audience?: undefined };

export interface RevokeResult {
  /** A subject's cutoff: its sessions issued until then are revoked. */
  revokedAt: Date | null;
  /** When the server drops the entry (no token it matches is valid after it). */
  dropAfter: Date | null;
}

export interface VerifyOptions {
  keyring?: string;
  token: string;
  /** Must equal the audience the token was signed for. Default ''. */
  audience?: string;
  /** For formats that carry only an issued-at (Flask): maximum accepted age. */
  maxAgeSeconds?: number;
}

export interface VerifyResult {
  result: VerifyResultName;
  /** result === 'VALID' */
  valid: boolean;
  /** The payload, only for VALID tokens. */
  payload: Buffer | null;
  /** The key the token names (for Flask cookies: the key that verified it), or null (e.g. MALFORMED). */
  keyId: number | null;
  issuedAt: Date | null;
  expiresAt: Date | null;
  /** VALID, but signed by a key that is no longer primary: re-issue the cookie. */
  refreshRecommended: boolean;
  /** VALID st2 tokens: the subject given at sign ('' when none or an older format); else null. */
  subject: string | null;
  /** VALID st2 tokens: the token id ('' for older formats); else null. */
  tokenId: string | null;
}

/** An item of a batch call that failed on its own (the others are unaffected). */
export interface BatchItemError {
  ok: false;
  /** google.rpc.Code of the item. */
  code: number;
  codeName: string;
  message: string;
}
export type BatchSignItem = ({ ok: true } & SignResult) | BatchItemError;
export type BatchVerifyItem = ({ ok: true } & VerifyResult) | BatchItemError;

export interface KeyInfo {
  keyId: number;
  algorithm: Algorithm | string;
  state: KeyState | string;
  createdAt: Date | null;
  stateChangedAt: Date | null;
}

/**
 * Rotation policy; all values whole seconds, 0 disables the step, except
 * tombstoneRetentionSeconds, where 0 means the server's default (30 days).
 */
export interface KeyringPolicy {
  rotationPeriodSeconds: number;
  stageLeadTimeSeconds: number;
  verifyWindowSeconds: number;
  destroyAfterSeconds: number;
  maxTokenTtlSeconds: number;
  tombstoneRetentionSeconds: number;
  /** New tokens carry their payload encrypted (AES-256-GCM); verify() still returns it in clear. Not for Flask keyrings. */
  sealPayloads: boolean;
}

export interface KeyringInfo {
  name: string;
  policy: KeyringPolicy;
  /** Newest first. */
  keys: KeyInfo[];
  primaryKeyId: number;
  /** Keyring revision (a counter; a Number). */
  revision: number;
  createdAt: Date | null;
}

export interface RotateResult {
  newKey: KeyInfo;
  previousPrimaryKeyId: number;
  revision: number;
}

export interface ListKeysResult {
  keyring: string;
  keys: KeyInfo[];
  primaryKeyId: number;
  revision: number;
}

/** One key's recent use, counted by the replica that answered (getKeyUsage). */
export interface KeyUsage {
  keyId: number;
  state: KeyState;
  verifiedLastHour: number;
  verifiedLastDay: number;
  /** null: not since the replica started */
  lastVerifiedAt: Date | null;
  rejectedDisabledLastDay: number;
  signedLastDay: number;
}

export interface KeyUsageResult {
  keyring: string;
  revision: number;
  countingSince: Date | null;
  keys: KeyUsage[];
}

export interface KeyringEntry {
  name: string;
  revision: number;
  primaryKeyId: number;
  keyCount: number;
}

export interface KeyOptions {
  keyring?: string;
  keyId: number;
}

export class Client {
  constructor(options?: ClientOptions | string);
  readonly address: string;
  readonly defaultKeyring: string | undefined;
  close(): void;
  /** Resolves once the channel is connected. */
  waitForReady(deadlineMs?: number): Promise<void>;

  sign(options: SignOptions, callOptions?: CallOptions): Promise<SignResult>;
  /** Resolves for every result, VALID or not; rejects only when the RPC fails. */
  verify(options: VerifyOptions, callOptions?: CallOptions): Promise<VerifyResult>;
  batchSign(items: SignOptions[], callOptions?: CallOptions): Promise<BatchSignItem[]>;
  batchVerify(items: VerifyOptions[], callOptions?: CallOptions): Promise<BatchVerifyItem[]>;
  /** Revokes one session (token) or every session of a subject issued until now. */
  revoke(options: RevokeOptions, callOptions?: CallOptions): Promise<RevokeResult>;

  rotate(options?: { keyring?: string; promoteNow?: boolean; algorithm?: Algorithm }, callOptions?: CallOptions): Promise<RotateResult>;
  listKeys(options?: { keyring?: string }, callOptions?: CallOptions): Promise<ListKeysResult>;
  getKeyUsage(options?: { keyring?: string }, callOptions?: CallOptions): Promise<KeyUsageResult>;
  promoteKey(options: KeyOptions, callOptions?: CallOptions): Promise<KeyringInfo>;
  disableKey(options: KeyOptions, callOptions?: CallOptions): Promise<KeyringInfo>;
  enableKey(options: KeyOptions, callOptions?: CallOptions): Promise<KeyringInfo>;
  destroyKey(options: KeyOptions, callOptions?: CallOptions): Promise<KeyringInfo>;
  importKey(
    options: { keyring?: string; algorithm: Algorithm; secret: Buffer | Uint8Array | string; state?: 'STAGED' | 'PRIMARY' | 'ACTIVE' },
    callOptions?: CallOptions,
  ): Promise<{ key: KeyInfo; revision: number; /** non-empty when the secret looks weak (also emitted as a WeakSecretWarning process warning) */ warning: string }>;
  createKeyring(
    options: { name: string; policy?: Partial<KeyringPolicy>; algorithm?: Algorithm },
    callOptions?: CallOptions,
  ): Promise<KeyringInfo>;
  listKeyrings(callOptions?: CallOptions): Promise<KeyringEntry[]>;
  getKeyring(options?: { keyring?: string }, callOptions?: CallOptions): Promise<KeyringInfo>;
  setPolicy(options: { keyring?: string; policy: Partial<KeyringPolicy> }, callOptions?: CallOptions): Promise<KeyringInfo>;
}

/** A failed RPC (not an invalid token: that is a VerifyResult). */
export class SessionTokenError extends Error {
  readonly name: 'SessionTokenError';
  /** e.g. 'SessionTokens.Sign' */
  readonly method: string;
  /** Numeric gRPC status code (see `status`). */
  readonly code: number;
  /** e.g. 'UNAVAILABLE' */
  readonly codeName: string;
  /** The server's message, e.g. 'ttl: required'. */
  readonly details: string;
}

/**
 * A session the service would not sign because of its size (larger than the middleware's
 * maxPayloadBytes, or refused by Sign with INVALID_ARGUMENT "payload: ..."); not saved.
 */
export class SessionTooLargeError extends Error {
  readonly name: 'SessionTooLargeError';
  /** Bytes of the serialised session. */
  readonly size: number;
  /** The middleware's limit, or null when the service refused the payload. */
  readonly limit: number | null;
}

/** The service's default payload limit (server flag max_payload_bytes): 2048. */
export const DEFAULT_MAX_PAYLOAD_BYTES: number;

/** gRPC status codes (grpc-js `status`). */
export const status: typeof grpcStatus;

export const DEFAULTS: Readonly<Required<Pick<ClientOptions, 'address'>>>;
export const CHANNEL_DEFAULTS: Readonly<ChannelOptions>;

// ---- Express / Node http middleware ----

/** The session's data: a plain JSON-serialisable object. */
export interface SessionData {
  [key: string]: unknown;
}

/**
 * req.session: the data plus express-session's methods (non-enumerable, never stored), as
 * Passport 0.6+ and express-session code use them. Callbacks run asynchronously.
 */
export interface Session extends SessionData {
  /** Replaces req.session with a new, empty session (a login); also replaces a session whose cookie could not be verified. */
  regenerate(callback: (err?: unknown) => void): this;
  /** Checks that the session can be saved (JSON, size: SessionTooLargeError); it is written when the response starts. */
  save(callback?: (err?: unknown) => void): this;
  /** Removes req.session: the cookie is deleted (a logout). */
  destroy(callback?: (err?: unknown) => void): this;
  /** Back to the data of the request's cookie. */
  reload(callback: (err?: unknown) => void): this;
  /** Revokes the request's token (Revoke) and deletes the cookie; rejects (after deleting it) when the revocation failed. */
  logout(callback?: (err?: unknown, result?: RevokeResult | null) => void): Promise<RevokeResult | null>;
  /** Revokes every session of the session's subject (subjectKey) issued until now, on every device, and deletes the cookie. */
  logoutEverywhere(callback?: (err?: unknown, result?: RevokeResult | null) => void): Promise<RevokeResult | null>;
}

export interface SessionCookieOptions {
  /** Default true. */
  httpOnly?: boolean;
  /** true, false, or 'auto' (default): Secure when the request came over HTTPS (req.secure). */
  secure?: boolean | 'auto';
  /** Default 'lax'; true means 'strict'; false omits the attribute. */
  sameSite?: boolean | 'strict' | 'lax' | 'none' | 'Strict' | 'Lax' | 'None';
  /** Default '/'. */
  path?: string;
  domain?: string;
  /** Milliseconds, as Express's res.cookie. Default (or null): a browser-session cookie, as express-session. */
  maxAge?: number | null;
  partitioned?: boolean;
}

export interface SessionLogger {
  error?(message: string): void;
  warn?(message: string): void;
  debug?(message: string): void;
}

export interface SessionOptions {
  /** Anything with Client's sign() and verify(). */
  client: Pick<Client, 'sign' | 'verify'> & Partial<Pick<Client, 'revoke'>> & { defaultKeyring?: string };
  /** Default: the client's keyring. */
  keyring?: string;
  /** Audience/purpose the cookie's tokens are bound to (may be ''; required). */
  audience: string;
  /** Default 'session'. */
  cookieName?: string;
  /** Token lifetime. Default 86400. */
  ttlSeconds?: number;
  /** Rolling expiry: re-sign an unchanged session whose token is older than this (< ttlSeconds). Default: off. */
  refreshAfterSeconds?: number | null;
  /** Sessions whose JSON is larger are not sent to Sign (SessionTooLargeError). Default 2048; null: leave it to the service. */
  maxPayloadBytes?: number | null;
  /** Max age passed to Verify (matters for Flask cookies). Default ttlSeconds. */
  maxAgeSeconds?: number;
  /** Deadline of each Verify/Sign the middleware makes. Default: the client's. */
  deadlineMs?: number;
  cookie?: SessionCookieOptions;
  /** Default: console (error, warn); debug is silent. */
  logger?: SessionLogger;
  /** The session key holding the user id (e.g. 'user_id'): tokens carry it as their subject, logoutEverywhere() revokes it. Default: none. */
  subjectKey?: string | null;
}

export type SessionRequest = IncomingMessage & { session: Session | null };
export type SessionMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => Promise<void>;

/** Express middleware: req.session backed by a cookie signed by the sessiontoken service. */
export function session(options: SessionOptions): SessionMiddleware;

// ---- native tokens ----

export interface NativeTokenFields {
  version: 'st1' | 'st2';
  keyId: number;
  /** Unix seconds. */
  issuedAt: number;
  /** Unix seconds (exclusive). */
  expiresAt: number;
  /** SHA-256(audience)[0..4). */
  audienceTag: Buffer;
  /** In clear, or for a sealed st2 token: nonce | ciphertext | GCM tag (only the service opens it). */
  payload: Buffer;
  mac: Buffer;
  /** st2: the payload is sealed. */
  sealed: boolean;
  /** st2: the token id, 22 base64url characters ('' for st1). */
  tokenId: string;
  /** st2: the subject bytes (empty for st1). */
  subject: Buffer;
}

/** Public fields of a native token, or null when MALFORMED. Does not (cannot) check the MAC. */
export function parseNativeToken(token: string): NativeTokenFields | null;
/** SHA-256(audience)[0..4), the tag a native token carries. */
export function nativeAudienceTag(audience: string | Buffer): Buffer;

declare global {
  namespace Express {
    interface Request {
      /** Set by sessiontoken's session() middleware; assign null (or undefined) to log out. */
      get session(): Session;
      set session(value: Session | SessionData | null | undefined);
    }
  }
}
