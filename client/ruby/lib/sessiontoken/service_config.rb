# frozen_string_literal: true

require 'json'

module Sessiontoken
  # The shared deadline and retry policy (proto/sessiontoken/v1/service_config.json). gRPC
  # core applies the retryPolicy itself; the `timeout`s are taken out and each call's
  # deadline is set by the client, because gRPC core 1.51 (Debian's) ends calls early from a
  # methodConfig timeout (the Python client does the same).
  module ServiceConfig
    DEFAULT_PATH = File.expand_path('../../../../proto/sessiontoken/v1/service_config.json', __dir__)

    # The shared file's text: the checkout's copy, else the copy generate.sh puts next to
    # the generated stubs (sessiontoken/service_config.json on $LOAD_PATH).
    def self.default_text
      return File.read(DEFAULT_PATH) if File.exist?(DEFAULT_PATH)

      $LOAD_PATH.each do |dir|
        path = File.join(dir, 'sessiontoken', 'service_config.json')
        return File.read(path) if File.exist?(path)
      end
      raise LoadError, 'sessiontoken: service_config.json not found (run client/ruby/generate.sh)'
    end

    # Returns [the config without its timeouts (JSON text), {[service, method] => seconds}]
    # where method is '' for a whole service.
    def self.split(text)
      config = JSON.parse(text)
      timeouts = {}
      (config['methodConfig'] || []).each do |entry|
        timeout = entry.delete('timeout')
        next if timeout.nil?
        unless timeout.is_a?(String) && timeout.match?(/\A\d+(\.\d+)?s\z/)
          raise ArgumentError, "service config: timeout #{timeout.inspect} is not a duration"
        end
        (entry['name'] || []).each do |n|
          timeouts[[n['service'].to_s, n['method'].to_s]] = timeout.chomp('s').to_f
        end
      end
      [JSON.generate(config), timeouts]
    end

    # The timeout of "package.Service" / "Method": its own entry, else its service's.
    def self.timeout_for(timeouts, service, method)
      timeouts.fetch([service, method]) { timeouts[[service, '']] }
    end
  end
end
