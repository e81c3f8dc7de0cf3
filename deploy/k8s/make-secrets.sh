#!/bin/sh
# Makes the secret material of a sessiontoken deployment in DIR (created 0700, files 0600):
#   kek              the key-encryption key (64 hex characters)        -> Secret sessiontoken-kek
#   frontend.token   API token of the frontends (SIGN, VERIFY)         -> your frontends' Secret
#   admin.token      API token of operators and the rotation job (ADMIN)
#   auth.textproto   the server's auth section: SHA-256 of both tokens and the access rules
#                                                                       -> Secret sessiontoken-auth
# Refuses to overwrite an existing DIR: a new KEK cannot read keyrings sealed with the old one.
# Then (deploy/README.md):
#   kubectl create secret generic sessiontoken-kek --from-file=kek=DIR/kek
#   kubectl create secret generic sessiontoken-auth --from-file=auth.textproto=DIR/auth.textproto
#   kubectl create secret generic sessiontoken-admin-token --from-file=token=DIR/admin.token
#   kubectl create secret generic sessiontoken-frontend-token --from-file=token=DIR/frontend.token
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
DIR=$1
if [ -e "$DIR" ]; then
  echo "make-secrets: $DIR exists; not overwriting (a new KEK cannot open existing keyrings)" >&2
  exit 1
fi
umask 077
mkdir -p "$DIR"
hex32() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
hex32 >"$DIR/kek"
echo >>"$DIR/kek"
hex32 >"$DIR/frontend.token"  # no newline: the token is exactly these 64 characters
hex32 >"$DIR/admin.token"
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat >"$DIR/auth.textproto" <<AUTH
# Appended to server.textproto by the pod's init container (Secret sessiontoken-auth).
auth {
  api_tokens { identity: "frontend" sha256: "$(sha "$DIR/frontend.token")" }
  api_tokens { identity: "admin" sha256: "$(sha "$DIR/admin.token")" }
  rules { identity: "token:frontend" keyrings: "*" roles: SIGN roles: VERIFY }
  rules { identity: "token:admin" keyrings: "*" roles: ADMIN }
}
AUTH
echo "make-secrets: wrote kek, frontend.token, admin.token, auth.textproto to $DIR (keep it safe)"
