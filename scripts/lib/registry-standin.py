#!/usr/bin/env python3
"""A local container registry for kiln's tests, all on loopback.

serve: one docker-registry (distribution 2.8, filesystem storage in a fresh temporary directory) on 127.0.0.1,
       optionally with
         --tls          HTTPS with a server certificate (IP 127.0.0.1, DNS localhost) from a fresh test CA;
         --client-cert  with --tls: the registry requires a client certificate signed by that CA;
         --auth basic   htpasswd user `kiln`, password `s3cret pass`;
         --auth token   a token server at /token (HTTP, or HTTPS with the same CA under --tls) that checks the same
                        Basic credentials, lets anonymous clients pull repositories under `public/` and nothing else,
                        and signs ES256 (or RS256, --token-alg) JWTs the registry trusts by their libtrust `kid`;
         --proxy        a plain-HTTP reverse proxy in front of the registry that streams bodies, passes headers both
                        ways (rewriting the registry's own Location headers to itself), and injects faults;
         --cdn          a plain-HTTP blob server on 127.0.0.2: the proxy answers every blob GET the registry would
                        have served with a 307 to it (a signed URL), and it serves the bytes from the registry's
                        storage, honouring Range;
         --rate BYTES   the proxy and the cdn send each response body at most at BYTES per second (a slow link);
         --retry-after SECONDS  the Retry-After of an injected 429 (default 1);
         --fault KIND:OP:EVERY  KIND 429 (Retry-After: --retry-after) | 503 | reset (the socket closed unanswered) | truncate
                        (headers with the full Content-Length, half the body, close) | drop-after-headers | ignore-range
                        (a Range request answered 200 with the whole body) | bad-range (206 with a Content-Range
                        start off by one) | no-access (token only: a token granting nothing, which the registry
                        answers with insufficient_scope); OP manifest (GET/HEAD .../manifests/...) | blob (GET .../blobs/<digest>;
                        served by the cdn under --cdn) | token | ping (GET /v2/) | any (every request the proxy, the
                        cdn or the token server sees). The 1st, (EVERY+1)th, ... matching request gets the fault; the
                        range kinds only count requests that carry a Range header.
       Writes the ready file once everything answers:
         {"registry": "127.0.0.1:PORT" (the proxy under --proxy, else the registry), "upstream": "127.0.0.1:PORT"
          (the registry), "tls": bool, "caFile": path, "certDir": path (for --cert-dir; holds ca.crt), "user": "kiln",
          "password": "s3cret pass", "tokenRealm": url or null, "cdn": "127.0.0.2:PORT" or null,
          "storage": the registry's storage directory, "auth": none|basic|token, "clientDir": under --client-cert,
          a directory holding the CA, client.cert and client.key (for --cert-dir), else null}
       and one JSON object a line to --log for every request the proxy, the cdn and the token server see:
         {"server": proxy|cdn|token, "method", "path" (with query), "status" (null when the socket was reset),
          "authorization": none|basic|bearer|other, "range": header or null, "fault": kind or null,
          "scope": [the token request's scopes] or null, "granted": [what the token grants] or null, "time"}.
       Runs until SIGTERM, SIGINT, stdin closing (unless --no-stdin), its parent going away, or the registry dying;
       then stops the registry and removes its temporary directory.
push:  copies SOURCE to docker://<upstream>/REPO:TAG with `skopeo copy --all --preserve-digests`, straight to the
       registry (never through the proxy, and, under token auth, with a token fetched without faults or logging).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER = "kiln"
PASSWORD = "s3cret pass"
SERVICE = "kiln-standin-registry"
ISSUER = "kiln-standin-token"
INTERNAL_HEADER = "X-Kiln-Standin"
FAULT_KINDS = ("429", "503", "reset", "truncate", "drop-after-headers", "ignore-range", "bad-range", "no-access")
RANGE_KINDS = ("ignore-range", "bad-range")
FAULT_OPS = ("manifest", "blob", "token", "ping", "any")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}
MANIFEST_PATH = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
BLOB_PATH = re.compile(r"^/v2/(.+)/blobs/([a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$")
CDN_PATH = re.compile(r"^/cdn/(sha256):([0-9a-f]{64})$")


# ----------------------------------------------------------------------------------------------------------------
# Keys, certificates, tokens.

def generate_tls(directory, token_alg):
    """Writes the test CA (certs/ca.crt), the server certificate and key (tls/), and the token signer's
    certificate (token/signer.crt); returns (ca path, server cert, server key, signing key, kid)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    before, after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kiln test"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(name("kiln test CA")).issuer_name(name("kiln test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(before).not_valid_after(after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca_cert.subject)
                   .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(before).not_valid_after(after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.2")),
                                                               x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    if token_alg == "RS256":
        signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        signing_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (x509.CertificateBuilder().subject_name(name("kiln test client")).issuer_name(ca_cert.subject)
                   .public_key(client_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(before).not_valid_after(after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    signer_cert = (x509.CertificateBuilder().subject_name(name("kiln test token signer")).issuer_name(ca_cert.subject)
                   .public_key(signing_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(before).not_valid_after(after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(ca_key, hashes.SHA256()))

    paths = {}
    for sub, files in (("certs", {"ca.crt": ca_cert.public_bytes(serialization.Encoding.PEM)}),
                       ("tls", {"server.crt": server_cert.public_bytes(serialization.Encoding.PEM),
                                "server.key": pem_key(server_key)}),
                       ("token", {"signer.crt": signer_cert.public_bytes(serialization.Encoding.PEM)}),
                       # What --cert-dir needs for a registry that asks for a client certificate.
                       ("client", {"ca.crt": ca_cert.public_bytes(serialization.Encoding.PEM),
                                   "client.cert": client_cert.public_bytes(serialization.Encoding.PEM),
                                   "client.key": pem_key(client_key)})):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
        for filename, data in files.items():
            path = os.path.join(directory, sub, filename)
            with open(path, "wb") as f:
                f.write(data)
            paths[filename if sub != "client" or filename != "ca.crt" else "client/ca.crt"] = path
    return paths, signing_key, libtrust_key_id(signing_key.public_key())


def libtrust_key_id(public_key):
    """libtrust's key id: base32 of the first 240 bits of SHA-256 over the DER SubjectPublicKeyInfo, in 12 groups
    of 4 joined by ':' (what distribution 2.8 matches a token's `kid` against)."""
    from cryptography.hazmat.primitives import serialization
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(key, alg, kid, claims):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    header = {"typ": "JWT", "alg": alg, "kid": kid}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(signature)


def bcrypt_hash(password):
    """A bcrypt entry for htpasswd (cost 4: the registry checks it on every request)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


def parse_scope(scope):
    """`type:name:actions` (a name may hold colons, e.g. a host:port) -> (type, name, [actions]) or None."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


# ----------------------------------------------------------------------------------------------------------------
# Shared state: faults and the request log.

class Fault:
    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or parts[0] not in FAULT_KINDS or parts[1] not in FAULT_OPS:
            raise argparse.ArgumentTypeError("fault %r is not KIND:OP:EVERY with KIND in %s and OP in %s"
                                             % (spec, "|".join(FAULT_KINDS), "|".join(FAULT_OPS)))
        self.kind, self.op = parts[0], parts[1]
        try:
            self.every = int(parts[2]) if len(parts) == 3 else 1
        except ValueError:
            raise argparse.ArgumentTypeError("fault %r: EVERY is not a number" % spec)
        if self.every < 1:
            raise argparse.ArgumentTypeError("fault %r: EVERY must be at least 1" % spec)
        self.count = 0


class State:
    def __init__(self, args):
        self.args = args
        self.faults = list(args.fault)
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.tls = args.tls
        self.upstream = None        # "127.0.0.1:PORT"
        self.proxy_address = None
        self.cdn_address = None
        self.ca_file = None
        self.client_pair = None     # (certificate, key) when the registry requires a client certificate
        self.storage = None
        self.signing_key = None
        self.kid = None
        self.cdn_secret = secrets.token_bytes(32)

    def fault_for(self, ops, has_range):
        """Counts the request against every matching fault; returns the first kind that fires, or None."""
        fired = None
        with self.lock:
            for f in self.faults:
                if f.op not in ops or (f.kind in RANGE_KINDS and not has_range):
                    continue
                f.count += 1
                if fired is None and (f.count - 1) % f.every == 0:
                    fired = f.kind
        return fired

    def record(self, entry):
        if self.log:
            line = json.dumps(entry) + "\n"
            with self.lock:
                self.log.write(line)

    def upstream_connection(self, timeout=300):
        host, port = self.upstream.rsplit(":", 1)
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.client_pair:
                context.load_cert_chain(*self.client_pair)
            return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def cdn_signature(self, digest):
        return hmac.new(self.cdn_secret, digest.encode(), hashlib.sha256).hexdigest()


def authorization_kind(value):
    if not value:
        return "none"
    scheme = value.split(" ", 1)[0].lower()
    return scheme if scheme in ("basic", "bearer") else "other"


def error_body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


# ----------------------------------------------------------------------------------------------------------------
# HTTP handlers.

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    server_kind = "?"

    def log_message(self, *a):
        pass

    def entry(self):
        return {"server": self.server_kind, "method": self.command, "path": self.path, "status": None,
                "authorization": authorization_kind(self.headers.get("Authorization")),
                "range": self.headers.get("Range"), "fault": None, "scope": None, "granted": None,
                "time": time.time()}

    def request_body_chunks(self):
        """The request body, streamed: (length or None for chunked, iterator of chunks); read once."""
        if getattr(self, "body_taken", False):
            return 0, iter(())
        self.body_taken = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None, self._chunked_reader()
        length = int(self.headers.get("Content-Length") or 0)

        def fixed():
            left = length
            while left > 0:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    raise ConnectionError("request body ended early")
                left -= len(data)
                yield data
        return length, fixed()

    def _chunked_reader(self):
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("chunked request body ended early")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = self.rfile.read(size)
            self.rfile.readline(65537)
            yield data

    def drain_body(self):
        try:
            for _ in self.request_body_chunks()[1]:
                pass
        except (ConnectionError, ValueError):
            self.close_connection = True

    def abort(self, reset):
        """Closes the client connection: with a RST (SO_LINGER 0) when `reset`, else with a FIN after the bytes sent."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def early_fault(self, fault, entry):
        """Answers the faults that need no upstream answer (429, 503, reset); True when one did."""
        if fault not in ("429", "503", "reset"):
            return False
        self.drain_body()
        if fault == "reset":
            entry["status"] = None
            self.abort(reset=True)
            return True
        if fault == "429":
            body = error_body("TOOMANYREQUESTS", "too many requests (injected)")
            headers = [("Retry-After", str(self.state.args.retry_after))]
        else:
            body = error_body("UNAVAILABLE", "service unavailable (injected)")
            headers = []
        headers += [("Content-Type", "application/json"), ("Docker-Distribution-Api-Version", "registry/2.0")]
        self.send_stream(int(fault), headers, len(body), io.BytesIO(body).read, None, entry,
                         no_body=self.command == "HEAD")
        return True

    def send_stream(self, status, headers, length, read, fault, entry, no_body=False):
        """Sends a response whose body `read(n)` yields (length None: chunked), applying truncate and
        drop-after-headers. For a response without a body, `length` is sent as given and nothing is read."""
        entry["status"] = status
        no_body = no_body or self.command == "HEAD"
        self.send_response_only(status)
        names = {k.lower() for k, _ in headers}
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        for k, v in headers:
            self.send_header(k, v)
        if length is None and not no_body:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if no_body:
            self.wfile.flush()
            return
        if fault == "drop-after-headers":
            self.abort(reset=False)
            return
        limit = length // 2 if fault == "truncate" and length is not None else None
        rate = self.state.args.rate if self.state else 0
        step = min(65536, max(1024, rate // 20)) if rate else 65536
        began = time.monotonic()
        sent = 0
        while limit is None or sent < limit:
            data = read(step if limit is None else min(step, limit - sent))
            if not data:
                break
            if rate:
                # Paced from the start of the body: `sent` bytes may have left by now.
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            if length is None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            sent += len(data)
        if fault == "truncate":
            self.abort(reset=False)
            return
        if length is None:
            self.wfile.write(b"0\r\n\r\n")
        elif sent != length:
            # The upstream body ended early: pass the breakage on.
            self.abort(reset=False)

    def handle_any(self):
        self.body_taken = False
        entry = self.entry()
        try:
            self.serve(entry)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            if entry["status"] is None:
                body = ("standin error: %s\n" % e).encode()
                try:
                    self.send_stream(502, [("Content-Type", "text/plain")], len(body), io.BytesIO(body).read,
                                     None, entry)
                except OSError:
                    pass
                entry["error"] = str(e)
            self.close_connection = True
        finally:
            if not entry.get("internal"):
                entry.pop("internal", None)
                self.state.record(entry)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class ProxyHandler(Handler):
    server_kind = "proxy"

    def serve(self, entry):
        state = self.state
        path = self.path.split("?", 1)[0]
        ops = {"any"}
        blob = None
        if self.command in ("GET", "HEAD") and MANIFEST_PATH.match(path):
            ops.add("manifest")
        elif self.command == "GET" and path in ("/v2/", "/v2"):
            ops.add("ping")
        elif self.command == "GET" and (blob := BLOB_PATH.match(path)):
            if state.cdn_address is None:
                ops.add("blob")  # under --cdn blob faults hit the cdn, which serves the bytes
        else:
            blob = None
        fault = state.fault_for(ops, self.headers.get("Range") is not None)
        entry["fault"] = fault
        if self.early_fault(fault, entry):
            return
        if blob is not None and state.cdn_address is not None:
            if self.redirect_to_cdn(blob.group(2), entry, fault):
                return
        self.forward(entry, fault)

    def upstream_headers(self, drop=()):
        out = []
        for k, v in self.headers.items():
            low = k.lower()
            if low in HOP_BY_HOP or low == "host" or low in drop or low == INTERNAL_HEADER.lower():
                continue
            out.append((k, v))
        return out

    def redirect_to_cdn(self, digest, entry, fault):
        """Asks the registry (with the client's credentials) whether it would serve the blob; if so answers 307 to
        the cdn and returns True. Otherwise the GET is forwarded as usual."""
        conn = self.state.upstream_connection()
        try:
            conn.putrequest("HEAD", self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.state.upstream)
            for k, v in self.upstream_headers(drop=("range", "if-range")):
                conn.putheader(k, v)
            conn.endheaders()
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                return False
        finally:
            conn.close()
        location = "%s://%s/cdn/%s?sig=%s&expires=%d" % (self.state.scheme, self.state.cdn_address, digest,
                                                           self.state.cdn_signature(digest), int(time.time()) + 600)
        headers = [("Location", location), ("Docker-Distribution-Api-Version", "registry/2.0"),
                   ("Content-Type", "text/html; charset=utf-8")]
        self.send_stream(307, headers, 0, io.BytesIO(b"").read, fault, entry)
        return True

    def rewrite_location(self, value):
        for scheme in ("https://", "http://"):
            for host in (self.state.upstream, self.state.upstream.replace("127.0.0.1", "localhost")):
                prefix = scheme + host
                if value.startswith(prefix) and (len(value) == len(prefix) or value[len(prefix)] in "/?"):
                    return self.state.scheme + "://" + self.state.proxy_address + value[len(prefix):]
        return value

    def forward(self, entry, fault):
        state = self.state
        drop = ("range", "if-range") if fault == "ignore-range" else ()
        conn = state.upstream_connection()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", state.upstream)
            for k, v in self.upstream_headers(drop=drop):
                conn.putheader(k, v)
            length, chunks = self.request_body_chunks()
            if length is None:
                conn.putheader("Transfer-Encoding", "chunked")
            elif length or self.command in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            for data in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(data), data) if length is None else data)
            if length is None:
                conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            headers = []
            for k, v in response.getheaders():
                low = k.lower()
                if low in HOP_BY_HOP:
                    continue
                if low == "location":
                    v = self.rewrite_location(v)
                if low == "content-range" and fault == "bad-range" and response.status == 206:
                    v = shift_content_range(v)
                headers.append((k, v))
            no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
            declared = response.getheader("Content-Length")
            length = int(declared) if declared is not None and declared.isdigit() else None
            read = response.read
            if not no_body and length is None and fault == "truncate":
                data = response.read()
                length, read = len(data), io.BytesIO(data).read
            if not no_body and length is None and not response.chunked:
                self.close_connection = True  # a close-delimited body: close after it too
            self.send_stream(response.status, headers, length, read, fault, entry, no_body=no_body)
        finally:
            conn.close()


def shift_content_range(value):
    """`bytes N-M/T` with the start (and end) moved by one: back when N > 0, forward at 0."""
    match = re.match(r"^bytes (\d+)-(\d+)/(\d+|\*)$", value.strip())
    if not match:
        return value
    start, end = int(match.group(1)), int(match.group(2))
    delta = -1 if start > 0 else 1
    return "bytes %d-%d/%s" % (start + delta, end + delta, match.group(3))


class CDNHandler(Handler):
    server_kind = "cdn"

    def serve(self, entry):
        state = self.state
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qs(query)
        has_range = self.headers.get("Range") is not None
        ops = {"any", "blob"} if self.command == "GET" else {"any"}
        fault = state.fault_for(ops, has_range)
        entry["fault"] = fault
        if self.early_fault(fault, entry):
            return
        self.drain_body()
        match = CDN_PATH.match(path)
        if self.command not in ("GET", "HEAD") or not match:
            return self.plain(404, b"no such object\n", entry)
        digest = match.group(1) + ":" + match.group(2)
        if not hmac.compare_digest(params.get("sig", [""])[0], state.cdn_signature(digest)):
            return self.plain(403, b"bad signature\n", entry)
        hexdigest = match.group(2)
        blob = os.path.join(state.storage, "docker", "registry", "v2", "blobs", "sha256", hexdigest[:2], hexdigest,
                            "data")
        try:
            f = open(blob, "rb")
        except FileNotFoundError:
            return self.plain(404, b"no such blob\n", entry)
        with f:
            size = os.fstat(f.fileno()).st_size
            headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"),
                       ("ETag", '"%s"' % digest), ("Cache-Control", "max-age=31536000")]
            status, start, end = 200, 0, size - 1
            requested = self.headers.get("Range")
            if requested and fault != "ignore-range":
                parsed = parse_range(requested, size)
                if parsed is None:
                    return self.plain(416, b"range not satisfiable\n", entry, [("Content-Range", "bytes */%d" % size)])
                start, end = parsed
                status = 206
                content_range = "bytes %d-%d/%d" % (start, end, size)
                if fault == "bad-range":
                    content_range = shift_content_range(content_range)
                headers.append(("Content-Range", content_range))
            f.seek(start)
            left = [end - start + 1]

            def read(n):
                data = f.read(min(n, left[0]))
                left[0] -= len(data)
                return data
            self.send_stream(status, headers, end - start + 1, read, fault, entry, no_body=self.command == "HEAD")

    def plain(self, status, body, entry, extra=()):
        self.send_stream(status, [("Content-Type", "text/plain")] + list(extra), len(body), io.BytesIO(body).read,
                         entry["fault"], entry)


def parse_range(value, size):
    """One `bytes=N-`, `bytes=N-M` or `bytes=-K` range -> (start, end), or None when unsatisfiable or not one range."""
    match = re.match(r"^bytes=(\d*)-(\d*)$", value.strip())
    if not match or (match.group(1) == "" and match.group(2) == ""):
        return None
    if match.group(1) == "":
        suffix = int(match.group(2))
        if suffix == 0 or size == 0:
            return None
        return max(0, size - suffix), size - 1
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class TokenHandler(Handler):
    server_kind = "token"

    def serve(self, entry):
        state = self.state
        internal = self.headers.get(INTERNAL_HEADER) == "push"
        entry["internal"] = internal
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        form = {}
        if self.command == "POST":
            length, chunks = self.request_body_chunks()
            form = urllib.parse.parse_qs(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True)
        scopes = []
        for value in params.get("scope", []) + form.get("scope", []):
            scopes += [s for s in value.split(" ") if s]
        entry["scope"] = scopes
        fault = None if internal else state.fault_for({"token", "any"}, self.headers.get("Range") is not None)
        entry["fault"] = fault
        if self.early_fault(fault, entry):
            return
        if path != "/token" or self.command not in ("GET", "POST"):
            return self.json(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}, entry, fault)

        user, given = None, False
        header = self.headers.get("Authorization")
        if header and header.lower().startswith("basic "):
            given = True
            try:
                name, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                name, password = None, None
            user = name if (name, password) == (USER, PASSWORD) else None
        elif self.command == "POST" and form.get("grant_type", [""])[0] == "password":
            given = True
            name, password = form.get("username", [""])[0], form.get("password", [""])[0]
            entry["authorization"] = "basic"  # credentials came, in the form
            user = name if (name, password) == (USER, PASSWORD) else None
        elif self.command == "POST":
            return self.json(400, {"error": "unsupported_grant_type"}, entry, fault)
        if given and user is None:
            return self.json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "wrong user name or password"}]},
                             entry, fault, [("WWW-Authenticate", 'Basic realm="kiln-standin-token"')])

        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if fault == "no-access":
                allowed = []  # a token for nothing: the registry answers insufficient_scope
            elif user is not None:
                allowed = [a for a in actions if a in ("pull", "push", "delete", "*")]
            elif kind == "repository" and name.startswith("public/"):
                allowed = [a for a in actions if a == "pull"]
            else:
                allowed = []
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        entry["granted"] = ["%s:%s:%s" % (a["type"], a["name"], ",".join(a["actions"])) for a in access]
        now = int(time.time())
        service = (params.get("service") or form.get("service") or [SERVICE])[0]
        claims = {"iss": ISSUER, "sub": user or "", "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(16), "access": access}
        token = sign_jwt(state.signing_key, state.args.token_alg, state.kid, claims)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.json(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued}, entry, fault)

    def json(self, status, obj, entry, fault, extra=()):
        body = json.dumps(obj).encode()
        self.send_stream(status, [("Content-Type", "application/json")] + list(extra), len(body),
                         io.BytesIO(body).read, fault, entry)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    ssl_context = None

    def handle_error(self, request, client_address):
        # A client that goes away (or resets an idle keep-alive connection) is not worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        # The TLS handshake happens in the request's own thread, not in the accept loop.
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        self.RequestHandlerClass(request, client_address, self)


def make_server(host, handler, state, ssl_context=None):
    cls = type(handler.__name__, (handler,), {"state": state})
    server = Server((host, 0), cls)
    server.ssl_context = ssl_context
    return server


# ----------------------------------------------------------------------------------------------------------------
# The registry process and the lifetime of it all.

class Lifetime:
    """What must go when the stand-in stops: the registry child and the temporary directory."""

    def __init__(self):
        self.children = []
        self.directory = None
        self.lock = threading.Lock()
        self.done = False
        self.stop = threading.Event()

    def cleanup(self):
        with self.lock:
            if self.done:
                return
            self.done = True
        for child in self.children:
            if child.poll() is None:
                try:
                    child.terminate()
                    child.wait(3)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                except OSError:
                    pass
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def exit(self, status=0):
        self.cleanup()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def quoted(value):
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(str(value))


def registry_config(directory, port, args, paths, token_realm):
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  formatter: text",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        "    rootdirectory: " + quoted(os.path.join(directory, "storage")),
        "  delete:",
        "    enabled: true",
        "  redirect:",
        "    disable: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        "  addr: " + quoted("127.0.0.1:%d" % port),
        "  secret: " + quoted(secrets.token_hex(16)),
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if args.tls:
        lines += ["  tls:",
                  "    certificate: " + quoted(paths["server.crt"]),
                  "    key: " + quoted(paths["server.key"])]
        if args.client_cert:
            # distribution then requires a client certificate signed by one of these CAs.
            lines += ["    clientcas:", "      - " + quoted(paths["ca.crt"])]
    lines += ["health:", "  storagedriver:", "    enabled: false"]
    if args.auth == "basic":
        lines += ["auth:", "  htpasswd:", "    realm: " + quoted("kiln-standin"),
                  "    path: " + quoted(os.path.join(directory, "htpasswd"))]
    elif args.auth == "token":
        lines += ["auth:", "  token:", "    realm: " + quoted(token_realm), "    service: " + quoted(SERVICE),
                  "    issuer: " + quoted(ISSUER), "    rootcertbundle: " + quoted(paths["signer.crt"])]
    path = os.path.join(directory, "config.yml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def set_parent_death_signal():
    # In the child, before exec: the registry gets SIGTERM should this process die without cleaning up.
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_registry(lifetime, state, directory, args, paths, token_realm):
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    # Variables like REGISTRY_HTTP_ADDR override the configuration file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    last_error = ""
    for _ in range(3):
        port = free_port()
        config = registry_config(directory, port, args, paths, token_realm)
        log_path = os.path.join(directory, "registry.log")
        with open(log_path, "ab") as log:
            child = subprocess.Popen([binary, "serve", config], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=env, preexec_fn=set_parent_death_signal)
        lifetime.children.append(child)
        state.upstream = "127.0.0.1:%d" % port
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and child.poll() is None:
            try:
                conn = state.upstream_connection(timeout=2)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return child
            except (OSError, http.client.HTTPException):
                time.sleep(0.03)
        if child.poll() is None:
            child.kill()
            child.wait()
        with open(log_path, "rb") as f:
            last_error = f.read().decode("utf-8", "replace")[-4000:]
        if "address already in use" not in last_error:
            break
    raise RuntimeError("docker-registry did not start:\n" + last_error)


def serve_main(args):
    # A test runner's worker thread may start this with signals blocked.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    lifetime = Lifetime()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *a: lifetime.exit(0))
    parent = os.getppid()
    try:
        if args.cdn and not args.proxy:
            raise RuntimeError("--cdn needs --proxy (the proxy answers blob GETs with redirects to the cdn)")
        directory = tempfile.mkdtemp(prefix="kiln-registry-")
        lifetime.directory = directory
        state = State(args)
        state.storage = os.path.join(directory, "storage")
        os.makedirs(state.storage)
        paths, state.signing_key, state.kid = generate_tls(directory, args.token_alg)
        state.ca_file = paths["ca.crt"]
        if args.client_cert:
            if not args.tls:
                sys.stderr.write("registry-standin: --client-cert needs --tls\n")
                lifetime.exit(2)
            state.client_pair = (paths["client.cert"], paths["client.key"])
        state.scheme = "https" if args.tls else "http"
        server_context = None
        if args.tls:
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(paths["server.crt"], paths["server.key"])
        if args.auth == "basic":
            with open(os.path.join(directory, "htpasswd"), "w") as f:
                f.write("%s:%s\n" % (USER, bcrypt_hash(PASSWORD)))

        # Bound before the registry starts (its configuration names the token realm); served after it has, so
        # that no thread runs while the registry is forked.
        servers = []
        token_realm = None
        if args.auth == "token":
            token_server = make_server("127.0.0.1", TokenHandler, state, server_context)
            servers.append(token_server)
            token_realm = "%s://127.0.0.1:%d/token" % ("https" if args.tls else "http", token_server.server_address[1])
        start_registry(lifetime, state, directory, args, paths, token_realm)
        if args.proxy:
            proxy = make_server("127.0.0.1", ProxyHandler, state, server_context)
            servers.append(proxy)
            state.proxy_address = "127.0.0.1:%d" % proxy.server_address[1]
        if args.cdn:
            cdn = make_server("127.0.0.2", CDNHandler, state, server_context)
            servers.append(cdn)
            state.cdn_address = "127.0.0.2:%d" % cdn.server_address[1]
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

        ready = {"registry": state.proxy_address or state.upstream, "upstream": state.upstream, "tls": args.tls,
                 "caFile": paths["ca.crt"], "certDir": os.path.dirname(paths["ca.crt"]), "user": USER,
                 "password": PASSWORD, "tokenRealm": token_realm, "cdn": state.cdn_address,
                 "storage": state.storage, "auth": args.auth,
                 "clientDir": os.path.dirname(paths["client.cert"]) if args.client_cert else None}
        with open(args.ready + ".tmp", "w") as f:
            json.dump(ready, f)
        os.rename(args.ready + ".tmp", args.ready)

        def watch_stdin():
            try:
                while sys.stdin.buffer.read1(65536):
                    pass
            except (OSError, ValueError):
                pass
            lifetime.stop.set()
        if not args.no_stdin:
            threading.Thread(target=watch_stdin, daemon=True).start()
        registry = lifetime.children[-1]
        while not lifetime.stop.wait(0.25):
            if registry.poll() is not None:
                sys.stderr.write("registry-standin: docker-registry exited with status %d\n" % registry.returncode)
                lifetime.exit(1)
            if os.getppid() != parent:
                break
        lifetime.exit(0)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        lifetime.exit(1)


# ----------------------------------------------------------------------------------------------------------------
# push

def push_main(args):
    with open(args.ready) as f:
        ready = json.load(f)
    repository = args.destination.rsplit(":", 1)[0] if ":" in args.destination.split("/")[-1] else args.destination
    command = ["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests", "--retry-times", "2"]
    if ready["tls"]:
        command += ["--dest-cert-dir", ready.get("clientDir") or ready["certDir"]]
    else:
        command += ["--dest-tls-verify=false"]
    if ready.get("tokenRealm"):
        # A token fetched here, past the faults and the log, so that only the test's own requests show there.
        query = urllib.parse.urlencode({"service": SERVICE, "account": ready["user"],
                                        "scope": "repository:%s:pull,push" % repository})
        request = urllib.request.Request(ready["tokenRealm"] + "?" + query)
        request.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (ready["user"], ready["password"])).encode()).decode())
        request.add_header(INTERNAL_HEADER, "push")
        context = ssl.create_default_context(cafile=ready["caFile"]) if ready["tls"] else None
        with urllib.request.urlopen(request, context=context, timeout=60) as response:
            token = json.load(response)["token"]
        command += ["--dest-registry-token", token]
    elif ready.get("auth", "none") != "none":
        command += ["--dest-creds", "%s:%s" % (ready["user"], ready["password"])]
    command += [args.source, "docker://%s/%s" % (ready["upstream"], args.destination)]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.stderr.write(result.stdout.decode("utf-8", "replace"))
        sys.stderr.write("registry-standin: skopeo copy failed with status %d\n" % result.returncode)
    sys.exit(result.returncode)


def main():
    parser = argparse.ArgumentParser(description="A local container registry for kiln's tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="start the registry and its companions")
    s.add_argument("--ready", required=True, help="where to write the JSON with the addresses once ready")
    s.add_argument("--log", help="where to append one JSON line per request to the proxy, cdn and token server")
    s.add_argument("--auth", choices=("none", "basic", "token"), default="none")
    s.add_argument("--tls", action="store_true", help="HTTPS with a certificate from a fresh test CA")
    s.add_argument("--proxy", action="store_true", help="a fault-injecting plain-HTTP proxy in front")
    s.add_argument("--cdn", action="store_true", help="blob GETs through the proxy redirect to a server on 127.0.0.2")
    s.add_argument("--fault", action="append", default=[], type=Fault,
                   help="KIND:OP:EVERY, KIND %s, OP %s" % ("|".join(FAULT_KINDS), "|".join(FAULT_OPS)))
    s.add_argument("--client-cert", action="store_true",
                   help="with --tls: the registry requires a client certificate from the test CA (readyfile: clientDir)")
    s.add_argument("--rate", type=int, default=0, help="bytes per second for each proxied or cdn body (0: no limit)")
    s.add_argument("--retry-after", type=int, default=1, help="the Retry-After of an injected 429")
    s.add_argument("--token-alg", choices=("ES256", "RS256"), default="ES256")
    s.add_argument("--no-stdin", action="store_true", help="do not stop when stdin closes")
    p = sub.add_parser("push", help="copy an image into the running registry with skopeo")
    p.add_argument("--ready", required=True)
    p.add_argument("source", help="a skopeo source, e.g. oci:fixtures/example-oci:tools:1.0")
    p.add_argument("destination", metavar="REPO:TAG")
    args = parser.parse_args()
    if args.command == "push":
        push_main(args)
    else:
        serve_main(args)


if __name__ == "__main__":
    main()
