#!/usr/bin/python3
"""Fails if a binary's dynamic symbol table exports BoringSSL/OpenSSL crypto API names.

BoringSSL is linked statically with hidden symbols (cmake/boringssl.cmake) while Debian's
gRPC loads OpenSSL 3's libcrypto, which defines the same names; an exported BoringSSL
symbol could interpose on (or be interposed by) OpenSSL's.

Usage: exports_test.py [BINARY...]
Without arguments it checks $SESSIONTOKEN_SERVER and $SESSIONTOKEN_CLI (both required).
"""

import os
import re
import subprocess
import sys

# C API prefixes of BoringSSL/OpenSSL libcrypto, plus BoringSSL's C++ namespace.
FORBIDDEN = re.compile(
    r"^(HMAC|EVP_|AES_|SHA256|SHA1|SHA512|SHA384|SHA224|MD5|RAND_|CRYPTO_|OPENSSL_|BN_|EC_|"
    r"ECDSA_|ECDH_|ERR_|X509|ED25519|X25519|RSA_|DH_|DSA_|BIO_|PEM_|ASN1_|OBJ_|CBS_|CBB_|"
    r"BORINGSSL_|bssl)")
# Demangled C++ names inside BoringSSL's namespace (e.g. bssl::UniquePtr helpers).
FORBIDDEN_DEMANGLED = re.compile(r"(^|[^A-Za-z0-9_])bssl::")


def exported_symbols(path, demangle):
    argv = ["nm", "-D", "--defined-only"] + (["-C"] if demangle else []) + [path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    names = []
    for line in r.stdout.splitlines():
        # "ADDRESS TYPE NAME" (demangled names may contain spaces).
        parts = line.split(None, 2)
        if len(parts) == 3:
            names.append(parts[2].split("@", 1)[0] if not demangle else parts[2])
    return names


def check(path):
    raw = exported_symbols(path, demangle=False)
    if not raw:
        raise RuntimeError(f"{path}: nm reported no defined dynamic symbols; cannot check")
    bad = sorted({n for n in raw if FORBIDDEN.match(n)})
    bad += sorted({n for n in exported_symbols(path, demangle=True)
                   if FORBIDDEN_DEMANGLED.search(n)})
    return len(raw), bad


def main(argv):
    paths = argv[1:]
    if not paths:
        missing = [v for v in ("SESSIONTOKEN_SERVER", "SESSIONTOKEN_CLI") if not os.environ.get(v)]
        if missing:
            print(f"exports_test: environment variable(s) {', '.join(missing)} not set "
                  "(paths of sessiontoken-server and the sessiontoken CLI)", file=sys.stderr)
            return 2
        paths = [os.environ["SESSIONTOKEN_SERVER"], os.environ["SESSIONTOKEN_CLI"]]
    failed = False
    for path in paths:
        if not os.path.isfile(path):
            print(f"exports_test: {path}: no such file", file=sys.stderr)
            return 2
        total, bad = check(path)
        if bad:
            failed = True
            print(f"FAIL {path}: {len(bad)} of {total} exported symbols look like "
                  "BoringSSL/OpenSSL crypto API:")
            for n in bad[:50]:
                print(f"  {n}")
            if len(bad) > 50:
                print(f"  ... and {len(bad) - 50} more")
        else:
            print(f"ok   {path}: {total} exported symbols, none from the crypto API")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
