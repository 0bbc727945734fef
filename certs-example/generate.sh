#!/usr/bin/env bash
# Regenerates the passfold EXAMPLE signing material in the folder this script
# lives in. Everything produced here is throw-away test material: it is not
# issued by Apple or Google and will never be accepted by a real device or by
# the Google Wallet API.
#
# Requirements: openssl 3.x CLI (with the legacy provider for pass-legacy.p12)
# and python3 (standard library only).
#
# Usage: bash certs-example/generate.sh
set -euo pipefail

OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PASS_TYPE_ID="pass.dev.passfold.example"
TEAM_ID="PASSFOLD01"
ORG="passfold example"
P12_PASSWORD="passfold"
GOOGLE_PROJECT="passfold-example"
GOOGLE_EMAIL="passfold-example@passfold-example.iam.gserviceaccount.com"
GOOGLE_ISSUER_ID="3388000000022345678"

DAYS_20Y=7305
DAYS_10Y=3653

case "$(openssl version)" in
  "OpenSSL 3."*) ;;
  *)
    echo "error: openssl 3.x is required, found: $(openssl version)" >&2
    exit 1
    ;;
esac
command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Random positive 128-bit serial number.
serial() {
  echo "0x$(openssl rand -hex 16)"
}

# Fresh unencrypted RSA 2048 key, PKCS#8 PEM ("BEGIN PRIVATE KEY").
newkey() {
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
}

cat >"$WORK/openssl.cnf" <<EOF
[ req ]
distinguished_name = req_dn
string_mask        = utf8only
utf8               = yes

[ req_dn ]

[ root_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ wwdr_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer

[ pass_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
# Apple "Pass Type ID" marker carrying the pass type identifier.
1.2.840.113635.100.6.1.16 = ASN1:UTF8String:${PASS_TYPE_ID}
1.2.840.113635.100.6.3.2  = ASN1:NULL

[ apns_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
EOF

# sign_cert <key> <subject> <ca-cert> <ca-key> <days> <ext-section> <out-cert>
sign_cert() {
  local key="$1" subj="$2" ca="$3" cakey="$4" days="$5" ext="$6" out="$7"
  openssl req -new -config "$WORK/openssl.cnf" -key "$key" -subj "$subj" \
    -out "$WORK/req.csr"
  openssl x509 -req -in "$WORK/req.csr" -CA "$ca" -CAkey "$cakey" \
    -set_serial "$(serial)" -days "$days" -sha256 \
    -extfile "$WORK/openssl.cnf" -extensions "$ext" -out "$out" 2>/dev/null
}

echo "==> root CA"
newkey "$OUT/root-ca.key"
openssl req -x509 -new -config "$WORK/openssl.cnf" -extensions root_ext \
  -key "$OUT/root-ca.key" \
  -subj "/CN=passfold Example Root CA (NOT APPLE)/O=${ORG}/C=US" \
  -set_serial "$(serial)" -days "$DAYS_20Y" -sha256 -out "$OUT/root-ca.pem"

echo "==> example WWDR intermediate"
newkey "$OUT/wwdr.key"
sign_cert "$OUT/wwdr.key" \
  "/CN=passfold Example Worldwide Developer Relations CA (NOT APPLE)/OU=G4/O=${ORG}/C=US" \
  "$OUT/root-ca.pem" "$OUT/root-ca.key" "$DAYS_20Y" wwdr_ext "$OUT/wwdr.pem"

echo "==> example Pass Type ID certificate"
newkey "$OUT/pass.key"
sign_cert "$OUT/pass.key" \
  "/UID=${PASS_TYPE_ID}/CN=Pass Type ID: ${PASS_TYPE_ID}/OU=${TEAM_ID}/O=${ORG}/C=US" \
  "$OUT/wwdr.pem" "$OUT/wwdr.key" "$DAYS_10Y" pass_ext "$OUT/pass.pem"

echo "==> PKCS#12 bundles"
# Modern: openssl 3 defaults (PBKDF2 + AES-256-CBC, HMAC-SHA256 MAC).
openssl pkcs12 -export -inkey "$OUT/pass.key" -in "$OUT/pass.pem" \
  -certfile "$OUT/wwdr.pem" -name "Pass Type ID: ${PASS_TYPE_ID}" \
  -passout "pass:${P12_PASSWORD}" -out "$OUT/pass.p12"
# Legacy: RC2-40 (certs) / 3DES (key), SHA-1 MAC, like old Keychain exports.
openssl pkcs12 -export -legacy -inkey "$OUT/pass.key" -in "$OUT/pass.pem" \
  -certfile "$OUT/wwdr.pem" -name "Pass Type ID: ${PASS_TYPE_ID}" \
  -passout "pass:${P12_PASSWORD}" -out "$OUT/pass-legacy.p12"

echo "==> loopback APNs TLS server certificate"
newkey "$OUT/apns-server.key"
sign_cert "$OUT/apns-server.key" "/CN=localhost/O=${ORG}/C=US" \
  "$OUT/root-ca.pem" "$OUT/root-ca.key" "$DAYS_10Y" apns_ext "$OUT/apns-server.pem"

echo "==> example Google service account"
newkey "$WORK/google.key"
openssl pkey -in "$WORK/google.key" -pubout -out "$OUT/google-service-account.pub.pem"
openssl pkey -in "$WORK/google.key" -pubout -outform DER -out "$WORK/google.pub.der"
GOOGLE_KEY_FILE="$WORK/google.key" GOOGLE_PUB_DER="$WORK/google.pub.der" \
GOOGLE_PROJECT="$GOOGLE_PROJECT" GOOGLE_EMAIL="$GOOGLE_EMAIL" \
GOOGLE_OUT="$OUT/google-service-account.json" python3 - <<'PY'
import hashlib, json, os, secrets, urllib.parse

with open(os.environ["GOOGLE_KEY_FILE"], encoding="ascii") as f:
    private_key = f.read()
with open(os.environ["GOOGLE_PUB_DER"], "rb") as f:
    key_id = hashlib.sha1(f.read()).hexdigest()

email = os.environ["GOOGLE_EMAIL"]
client_id = "1" + "".join(secrets.choice("0123456789") for _ in range(20))

doc = {
    "type": "service_account",
    "project_id": os.environ["GOOGLE_PROJECT"],
    "private_key_id": key_id,
    "private_key": private_key,
    "client_email": email,
    "client_id": client_id,
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
    + urllib.parse.quote(email, safe=""),
    "universe_domain": "googleapis.com",
}
with open(os.environ["GOOGLE_OUT"], "w", encoding="ascii") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
PY

printf '%s\n' "$GOOGLE_ISSUER_ID" >"$OUT/google-issuer-id"

# Example material only: keep everything world-readable so tests running as
# another user (CI containers) can load it.
chmod 0644 "$OUT"/*.key "$OUT"/*.p12 "$OUT"/*.pem "$OUT"/*.json "$OUT/google-issuer-id"

echo "==> self-check"
openssl verify -CAfile "$OUT/root-ca.pem" -untrusted "$OUT/wwdr.pem" "$OUT/pass.pem"
openssl verify -CAfile "$OUT/root-ca.pem" "$OUT/apns-server.pem"

echo "done: example material written to $OUT"
