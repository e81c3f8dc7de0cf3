// The sessiontoken Go client (package sessiontoken) and net/http middleware
// (sessiontoken/session). Offline on Debian 12 it builds in GOPATH mode from Debian's
// golang-google-grpc-dev and golang-google-protobuf-dev: see gopath.sh and README.md.
module sessiontoken

go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
