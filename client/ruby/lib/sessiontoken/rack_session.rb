# frozen_string_literal: true

require 'json'
require 'logger'
require 'rack'

module Sessiontoken
  # Rack session middleware: env['rack.session'] (Sinatra's and Rails' `session`) is a hash
  # of JSON values stored in a cookie whose value is a token signed by the sessiontoken
  # service. The rules are the Express middleware's and Flask's:
  # * the cookie is verified lazily, when the app first touches the session;
  # * it is written only when the session changed (compared as JSON, so nested changes
  #   count), when Verify says refresh_recommended (the token's key was rotated out: it is
  #   re-issued under the new primary key), or with refresh_after_seconds once it is that old;
  # * a session that had data and was emptied deletes the cookie;
  # * a missing, tampered, expired or foreign cookie gives an empty session, left alone;
  # * fail closed: if the service cannot be reached or fails, the session is empty (an
  #   unverified cookie is never trusted), the error is logged and the request goes on; that
  #   session is never saved (the browser's cookie is neither replaced nor deleted) unless
  #   the app starts a new one (env['rack.session.options'][:renew] = true, or
  #   session.regenerate, at login) or drops it (options[:drop], session.destroy, at logout);
  # * a session over max_payload_bytes (or that Sign refuses as too large) is not saved: the
  #   error is logged and, if it was changed, the cookie is deleted. Any other Sign failure
  #   of a changed session does the same;
  # * cookie values are never logged;
  # * revocation (the service's Revoke): with subject_key (e.g. 'user_id'), every token is
  #   signed with session[subject_key] (a String or number) as its subject. session.logout
  #   revokes the token the request came with and deletes the cookie; session.logout_everywhere
  #   revokes every session of the subject issued until now ("log out everywhere": the cookies
  #   of other devices are REVOKED on their next request) and deletes the cookie. Both delete
  #   the cookie even when the revocation fails; the error is then logged and raised
  #   (Sessiontoken::Error). A REVOKED cookie gives an empty session, like a tampered one.
  #
  #   use Sessiontoken::RackSession, client: -> { Sessiontoken::Client.new('127.0.0.1:50051') },
  #       keyring: 'default', audience: 'myapp:session'
  class RackSession
    DEFAULT_MAX_PAYLOAD_BYTES = 2048 # the service's default max_payload_bytes
    OPTIONS = %i[client keyring audience key ttl_seconds max_age_seconds refresh_after_seconds
                 max_payload_bytes timeout path domain secure httponly same_site expire_after
                 partitioned logger subject_key].freeze

    # The session: a Hash with string keys (symbols are converted, as Rack's SessionHash does).
    class Session
      include Enumerable

      # revoker: the middleware's #revoke_for_session; subject_key: its subject_key option.
      def initialize(revoker = nil, subject_key = nil, &loader)
        @loader = loader
        @revoker = revoker
        @subject_key = subject_key
        @data = nil
        @regenerated = false
      end

      def loaded?
        !@data.nil?
      end

      def [](key) = data[key.to_s]
      def []=(key, value)
        data[key.to_s] = value
      end
      alias store []=
      def fetch(key, *args, &block) = data.fetch(key.to_s, *args, &block)
      def key?(key) = data.key?(key.to_s)
      alias has_key? key?
      alias include? key?
      def dig(key, *rest) = data.dig(key.to_s, *rest)
      def delete(key) = data.delete(key.to_s)
      def keys = data.keys
      def values = data.values
      def each(&block) = data.each(&block)
      def empty? = data.empty?
      def to_hash = data.dup
      alias to_h to_hash

      def update(hash)
        hash.each { |k, v| self[k] = v }
        self
      end
      alias merge! update

      def clear
        data.clear
        self
      end

      # A new, empty session (at login). It also replaces a cookie that could not be verified.
      def regenerate
        data # what the request's cookie held decides whether there is a cookie to replace
        @data = {}
        @regenerated = true
        self
      end

      # Empties the session and deletes the cookie (at logout), also an unverified one.
      alias destroy regenerate

      def id = nil
      def exists? = loaded? && !@data.empty?
      def options = {}
      def inspect = loaded? ? "#<Sessiontoken::RackSession::Session #{@data.keys.inspect}>" : '#<Sessiontoken::RackSession::Session not loaded>'

      def regenerated? = @regenerated

      # Revokes the token the request came with (a copy of the cookie, replayed, is then
      # REVOKED) and destroys the session (the cookie is deleted even when the revocation
      # fails; the Sessiontoken::Error is then logged and raised). Returns the RevokeResult,
      # or nil when the request had no valid token.
      def logout
        token = state[:token]
        destroy
        token && @revoker&.call('logout', token: token)
      end

      # Revokes every session of this session's subject (session[subject_key]) issued until
      # now, on every device, and destroys the session (the cookie is deleted even when the
      # revocation fails, which is then logged and raised). ArgumentError, changing nothing,
      # when the session has no subject.
      def logout_everywhere
        subject = self.subject
        raise ArgumentError, "logout_everywhere: the session has no #{@subject_key || 'subject_key option'}" if subject.empty?

        destroy
        @revoker.call('logout everywhere', subject: subject)
      end

      # session[subject_key] as a String, '' when none.
      def subject
        return '' if @subject_key.nil?

        v = data[@subject_key]
        v.nil? ? '' : v.to_s
      end

      # Rack's options[:renew]: keep the data, but save it as a new session (a login).
      def renew!
        data
        @regenerated = true
      end

      def unverified? = @state&.fetch(:unverified, false) || false

      # {values:, refresh:, had_cookie:, unverified:, initial:} of the request's cookie.
      def state
        data
        @state
      end

      private

      def data
        return @data if @data

        @state = @loader.call
        @data = @state[:values]
      end
    end

    def initialize(app, options = {})
      @app = app
      unknown = options.keys - OPTIONS
      raise ArgumentError, "Sessiontoken::RackSession: unknown options #{unknown.inspect}" unless unknown.empty?

      @client_or_factory = options.fetch(:client) { raise ArgumentError, 'client: required' }
      @keyring = options[:keyring] || (@client_or_factory.respond_to?(:keyring) && @client_or_factory.keyring)
      raise ArgumentError, 'keyring: required' unless @keyring.is_a?(String) && !@keyring.empty?

      @audience = options.fetch(:audience) { raise ArgumentError, 'audience: required (names the cookie\'s purpose)' }
      @key = options.fetch(:key, 'session')
      @ttl = Integer(options.fetch(:ttl_seconds, 86_400))
      @max_age = Integer(options.fetch(:max_age_seconds, @ttl))
      @refresh_after = options[:refresh_after_seconds]
      raise ArgumentError, 'refresh_after_seconds must be less than ttl_seconds' if @refresh_after && @refresh_after >= @ttl

      @max_payload = options.fetch(:max_payload_bytes, DEFAULT_MAX_PAYLOAD_BYTES)
      @timeout = options[:timeout]
      @cookie = Cookie.new(options)
      @logger = options[:logger] || Logger.new($stderr)
      @subject_key = options[:subject_key]&.to_s
      raise ArgumentError, 'subject_key: a non-empty String expected' if @subject_key&.empty?

      @tag = "sessiontoken.rack_session[#{@key}]"
      @mutex = Mutex.new
    end

    def call(env)
      req = Rack::Request.new(env)
      session = Session.new(method(:revoke_for_session), @subject_key) { load(req) }
      env[Rack::RACK_SESSION] = session
      env[Rack::RACK_SESSION_OPTIONS] = {}
      status, headers, body = @app.call(env)
      commit(req, env, headers)
      [status, headers, body]
    end

    # What the response needs: :keep, :clear or :sign (see the class comment).
    def self.decide(state, now, regenerated)
      return :keep if state[:unverified] && !regenerated
      if now == '{}'
        return state[:initial] != '{}' || (regenerated && state[:had_cookie]) ? :clear : :keep
      end
      return :sign if now != state[:initial] || state[:refresh] || regenerated

      :keep
    end

    private

    # A logout's revocation (target: token: or subject:), called by Session#logout and
    # #logout_everywhere once the session is destroyed. A failure is logged (never the token)
    # and raised.
    def revoke_for_session(what, target)
      target = target.merge(audience: @audience) if target[:token]
      client.revoke(keyring: @keyring, timeout: @timeout, **target)
    rescue StandardError => e
      log(:error, "#{what}: not revoked (the cookie is deleted anyway): #{e.message}")
      raise
    end

    # The Client: one per process (gRPC channels do not survive fork), made by the factory.
    def client
      @mutex.synchronize do
        if @client.nil? || @client_pid != Process.pid
          @client = @client_or_factory.respond_to?(:call) ? @client_or_factory.call : @client_or_factory
          @client_pid = Process.pid
        end
        @client
      end
    end

    def log(level, message)
      @logger.public_send(level, "#{@tag}: #{message}")
    end

    def empty_state(had_cookie, unverified: false)
      { values: {}, initial: '{}', refresh: false, had_cookie: had_cookie, unverified: unverified }
    end

    def load(req)
      token = req.cookies[@key]
      return empty_state(false) if token.nil? || token.empty?
      if token.length > Token::MAX_TOKEN_CHARS
        log(:debug, "session cookie rejected: longer than #{Token::MAX_TOKEN_CHARS} characters")
        return empty_state(true)
      end
      begin
        r = client.verify(keyring: @keyring, token: token, audience: @audience, max_age_seconds: @max_age,
                          timeout: @timeout)
      rescue StandardError => e
        log(:error, "cannot verify the session cookie, using an empty session: #{e.message}")
        return empty_state(true, unverified: true)
      end
      unless r.valid?
        log(:debug, "session cookie rejected: #{r.result}")
        return empty_state(true)
      end
      values = begin
        JSON.parse(r.payload.dup.force_encoding('UTF-8'))
      rescue JSON::ParserError
        nil
      end
      unless values.is_a?(Hash)
        log(:warn, 'valid token whose payload is not a JSON object; using an empty session')
        return empty_state(true)
      end
      refresh = r.refresh_recommended || (@refresh_after && r.issued_at && Time.now - r.issued_at >= @refresh_after)
      { values: values, initial: JSON.generate(values), refresh: refresh, had_cookie: true, unverified: false,
        token: token }
    end

    def commit(req, env, headers)
      session = env[Rack::RACK_SESSION]
      options = env[Rack::RACK_SESSION_OPTIONS] || {}
      return unless session.is_a?(Session)
      return if options[:skip] # Rack's and Rails' "do not write the session for this request"

      session.renew! if options[:renew]
      session.destroy if options[:drop]
      return unless session.loaded? || session.regenerated?

      state = session.state
      begin
        now = JSON.generate(session.to_hash)
      rescue StandardError => e
        return log(:error, "session not saved: not JSON-serialisable: #{e.message}")
      end
      if state[:unverified] && !session.regenerated? && now != state[:initial]
        log(:warn, "session not saved: the request's cookie could not be verified; the cookie is left unchanged")
      end
      secure = @cookie.secure?(req)
      case self.class.decide(state, now, session.regenerated?)
      when :clear then @cookie.add(headers, @cookie.clear_header(@key, secure))
      when :sign
        refresh_only = now == state[:initial] && !session.regenerated?
        value = sign(state, now, session.subject, refresh_only, secure)
        @cookie.add(headers, value) if value
      end
    end

    # The Set-Cookie value for json, or nil.
    def sign(state, json, subject, refresh_only, secure)
      if @max_payload && json.bytesize > @max_payload
        err = "session too large (#{json.bytesize} bytes, limit #{@max_payload})"
      else
        begin
          token = client.sign(payload: json, ttl_seconds: @ttl, audience: @audience, keyring: @keyring,
                              subject: subject, timeout: @timeout).token
          return @cookie.set_header(@key, token, secure)
        rescue Sessiontoken::Error => e
          too_large = e.code == GRPC::Core::StatusCodes::INVALID_ARGUMENT && e.details.to_s.start_with?('payload:')
          err = too_large ? "session too large (#{json.bytesize} bytes): #{e.details}" : e.message
        rescue StandardError => e
          err = e.message
        end
      end
      if refresh_only
        log(:warn, "cannot re-issue the session cookie (the cookie is left unchanged): #{err}")
      elsif state[:unverified] || !state[:had_cookie]
        log(:error, "session not saved: #{err}")
      else
        # A changed session that cannot be stored must not leave the previous state behind.
        log(:error, "session not saved, cookie deleted: #{err}")
        return @cookie.clear_header(@key, secure)
      end
      nil
    end
  end
end

require 'sessiontoken/rack_cookie'
