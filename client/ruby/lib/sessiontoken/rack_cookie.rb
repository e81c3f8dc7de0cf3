# frozen_string_literal: true

require 'rack'
require 'time'

module Sessiontoken
  class RackSession
    # The session cookie's attributes and Set-Cookie values. Defaults: Path=/, HttpOnly,
    # SameSite=Lax, Secure when the request is HTTPS (Rack's req.ssl?, which follows
    # X-Forwarded-Proto), no Max-Age (a browser-session cookie; expire_after: seconds sets one).
    class Cookie
      SAME_SITE = { strict: 'Strict', lax: 'Lax', none: 'None' }.freeze
      VALUE = /\A[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*\z/.freeze
      ATTR = /\A[\x20-\x3A\x3C-\x7E]*\z/.freeze

      def initialize(options)
        @path = options.fetch(:path, '/')
        @domain = options[:domain]
        @secure = options.fetch(:secure, :auto)
        @httponly = options.fetch(:httponly, true)
        same_site = options.fetch(:same_site, :lax)
        @same_site = same_site && SAME_SITE.fetch(same_site.to_s.downcase.to_sym) do
          raise ArgumentError, "same_site: #{same_site.inspect} (:strict, :lax, :none or nil)"
        end
        @expire_after = options[:expire_after]
        @partitioned = options.fetch(:partitioned, false)
        [@path, @domain].each do |v|
          raise ArgumentError, "invalid cookie path or domain #{v.inspect}" unless v.nil? || (v.is_a?(String) && v.match?(ATTR))
        end
        raise ArgumentError, 'expire_after: seconds >= 0 or nil' unless @expire_after.nil? || @expire_after.to_i >= 0
        raise ArgumentError, "secure: true, false or :auto" unless [true, false, :auto].include?(@secure)
      end

      def secure?(req)
        @secure == :auto ? req.ssl? : @secure
      end

      def set_header(name, value, secure, now = Time.now)
        raise ArgumentError, 'invalid cookie value' unless value.match?(VALUE)

        s = +"#{name}=#{value}"
        if @expire_after
          s << "; Max-Age=#{@expire_after.to_i}; Expires=#{(now + @expire_after.to_i).httpdate}"
        end
        s << attributes(secure)
      end

      def clear_header(name, secure)
        "#{name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT#{attributes(secure)}"
      end

      # Adds a Set-Cookie line to Rack 2 response headers (several lines joined by "\n").
      def add(headers, line)
        prev = headers['Set-Cookie']
        headers['Set-Cookie'] = if prev.nil? || prev.empty?
                                  line
                                else
                                  (prev.is_a?(Array) ? prev.join("\n") : prev) + "\n" + line
                                end
      end

      private

      def attributes(secure)
        s = +''
        s << "; Domain=#{@domain}" if @domain
        s << "; Path=#{@path}" if @path
        s << '; HttpOnly' if @httponly
        s << '; Secure' if secure
        s << '; Partitioned' if @partitioned
        s << "; SameSite=#{@same_site}" if @same_site
        s
      end
    end
  end
end
