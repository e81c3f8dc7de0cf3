# frozen_string_literal: true

Gem::Specification.new do |s|
  s.name = 'sessiontoken'
  s.version = '0.1.0'
  s.summary = 'Client of the sessiontoken service and Rack session middleware (Sinatra, Rails)'
  s.description = 'Sessions in cookies signed by the sessiontoken service instead of an app secret.'
  s.license = 'Apache-2.0'
  s.authors = ['sessiontoken developers']
  s.required_ruby_version = '>= 3.0'
  # lib/sessiontoken/v1/*_pb.rb and lib/sessiontoken/service_config.json come from
  # `rake generate` (never committed): build the gem after it.
  s.files = Dir['lib/**/*.rb', 'lib/sessiontoken/service_config.json', 'README.md']
  s.require_paths = ['lib']
  s.add_runtime_dependency 'google-protobuf', '>= 3.21'
  s.add_runtime_dependency 'grpc', '>= 1.51'
  s.add_runtime_dependency 'rack', '>= 2.2'
end
