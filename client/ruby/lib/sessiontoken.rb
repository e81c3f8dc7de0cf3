# frozen_string_literal: true

# The sessiontoken Ruby client: Sessiontoken::Client (gRPC), Sessiontoken::Token (parser of
# st1 tokens) and Sessiontoken::RackSession (Rack session middleware for Sinatra, Rails and
# any Rack app). The gRPC stubs (sessiontoken/v1/*_pb.rb) are generated, never committed:
# `rake generate` writes them into lib/, or put a directory holding them on $LOAD_PATH.
require 'sessiontoken/token'
require 'sessiontoken/client'
require 'sessiontoken/rack_session'
