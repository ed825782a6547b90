#!/usr/bin/env python3
"""Local stand-ins for kiln's AWS tests, all on 127.0.0.1.

serve: moto in server mode (EBS, EC2, STS) behind a proxy that logs every request, checks its SigV4 signature
       with botocore (the oracle) for the access keys it is told, injects faults (429, 503, connection resets,
       slow answers, refusals), and also answers as a container-credentials endpoint and an IMDSv2 endpoint.
       A snapshot started with a ParentSnapshotId starts with the parent's blocks, as on EBS (moto ignores it).
       Writes {"proxy": PORT, "moto": PORT} to --ready once listening; runs until stdin closes or SIGTERM.
sign:  reads a JSON list of requests on stdin and prints the Authorization header botocore's SigV4Auth gives
       each, one JSON list on stdout.
"""
import argparse
import datetime
import http.client
import json
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def botocore_authorization(method, host, path, params, headers, access_key, secret, token, service, region, amz_date):
    """The Authorization header botocore signs for this request (headers: the ones to sign, host included)."""
    url = "http://" + host + path
    request = AWSRequest(method=method, url=url, params=params or None, headers={}, data=b"")
    for name, value in headers:
        if name.lower() in ("authorization",):
            continue
        request.headers[name] = value
    auth = SigV4Auth(Credentials(access_key, secret, token), service, region)
    request.context["timestamp"] = amz_date
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    signature = auth.signature(string_to_sign, request)
    auth._inject_signature_to_request(request, signature)
    return request.headers["Authorization"]


def sign_main():
    out = []
    for r in json.load(sys.stdin):
        out.append(botocore_authorization(r["method"], r["host"], r["path"], r.get("query") or [], r["headers"],
                                          r["accessKey"], r["secret"], r.get("token"), r["service"], r["region"], r["amzDate"]))
    json.dump(out, sys.stdout)


def operation(method, path, body):
    parts = path.split("?")[0].strip("/").split("/")
    if parts[:1] == ["snapshots"]:
        if method == "POST" and len(parts) == 1:
            return "StartSnapshot"
        if method == "POST" and len(parts) == 3 and parts[1] == "completion":
            return "CompleteSnapshot"
        if len(parts) == 3 and parts[2] == "blocks":
            return "ListSnapshotBlocks"
        if len(parts) == 4 and parts[2] == "blocks":
            return "PutSnapshotBlock" if method == "PUT" else "GetSnapshotBlock"
    if method == "POST" and path.split("?")[0] == "/":
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        return form.get("Action", ["?"])[0]
    return method + " " + path.split("?")[0]


class State:
    def __init__(self, args):
        self.moto_port = None
        self.secrets = dict(s.split("=", 1) for s in args.secret)
        self.faults = []  # (operation, kind, every, counter)
        for spec in args.fault:
            op, kind, every = spec.split(":")
            self.faults.append([op, kind, int(every), 0])
        self.slow_seconds = args.slow_seconds
        self.delay = {}
        for spec in args.delay:
            op, seconds = spec.split(":")
            self.delay[op] = float(seconds)
        self.container_token = args.container_token
        self.creds = {"AccessKeyId": args.standin_key, "SecretAccessKey": "standin-secret", "Token": "standin-token",
                      "Expiration": (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.imds_tokens = set()
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.in_flight = 0
        self.peak_in_flight = 0

    def fault_for(self, op):
        with self.lock:
            for f in self.faults:
                if f[0] == op:
                    f[3] += 1
                    if f[3] % f[2] == 0:
                        return f[1]
        return None

    def record(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


def inherit_blocks(moto_port, parent, child, headers):
    """EBS starts a snapshot with a ParentSnapshotId holding every block of the parent; moto ignores the parameter,
    so the stand-in copies the parent's blocks into the new snapshot itself (straight to moto, not logged as the
    client's requests). Returns the number of blocks copied."""
    auth = {k: v for k, v in headers.items() if k.lower() in ("authorization", "x-amz-date", "x-amz-security-token")}

    def call(method, path, body=b"", extra=None):
        conn = http.client.HTTPConnection("127.0.0.1", moto_port, timeout=120)
        conn.request(method, path, body=body, headers=dict(auth, **(extra or {})))
        r = conn.getresponse()
        out = (r.status, r.read(), dict(r.getheaders()))
        conn.close()
        return out

    status, listing, _ = call("GET", "/snapshots/%s/blocks" % parent)
    if status != 200:
        raise RuntimeError("cannot list the parent %s: %d %r" % (parent, status, listing))
    blocks = json.loads(listing).get("Blocks", [])
    for b in blocks:
        index, token = b["BlockIndex"], b["BlockToken"]
        status, data, h = call("GET", "/snapshots/%s/blocks/%s?blockToken=%s" % (parent, index, token))
        h = {k.lower(): v for k, v in h.items()}
        call("PUT", "/snapshots/%s/blocks/%s" % (child, index), data,
             {"x-amz-Checksum": h.get("x-amz-checksum", ""), "x-amz-Checksum-Algorithm": "SHA256",
              "x-amz-Data-Length": str(len(data)), "content-type": "application/octet-stream"})
    return len(blocks)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def check_signature(self, body):
        auth = self.headers.get("Authorization")
        if not auth or not auth.startswith("AWS4-HMAC-SHA256 "):
            return None
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        key, day, region, service, _ = fields["Credential"].split("/")
        secret = self.state.secrets.get(key)
        if secret is None:
            return "unknown-key"
        signed = fields["SignedHeaders"].split(";")
        headers = [(n, self.headers.get(n)) for n in signed]
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        expected = botocore_authorization(self.command, self.headers.get("Host"), path, params, headers, key, secret,
                                          self.headers.get("x-amz-security-token"), service, region, self.headers.get("x-amz-date"))
        return "ok" if expected == auth else "mismatch"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path
        # Credential stand-ins.
        if path.startswith("/container-credentials"):
            if self.headers.get("Authorization") != self.state.container_token:
                return self.reply(401, b'{"message":"bad token"}')
            return self.reply(200, json.dumps(self.state.creds).encode())
        if path == "/latest/api/token" and self.command == "PUT":
            token = "imds-%d" % time.time_ns()
            self.state.imds_tokens.add(token)
            return self.reply(200, token.encode())
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("x-aws-ec2-metadata-token") not in self.state.imds_tokens:
                return self.reply(401)
            role = path[len("/latest/meta-data/iam/security-credentials/"):]
            if not role:
                return self.reply(200, b"standin-role")
            creds = dict(self.state.creds, Code="Success", Type="AWS-HMAC")
            return self.reply(200, json.dumps(creds).encode())
        op = operation(self.command, path, body)
        entry = {"method": self.command, "path": path.split("?")[0], "op": op, "signature": self.check_signature(body),
                 "time": time.time()}
        with self.state.lock:
            self.state.in_flight += 1
            self.state.peak_in_flight = max(self.state.peak_in_flight, self.state.in_flight)
            entry["inFlight"] = self.state.in_flight
        try:
            fault = self.state.fault_for(op)
            entry["fault"] = fault
            if op in self.state.delay:
                time.sleep(self.state.delay[op])
            if fault == "429":
                self.state.record(dict(entry, status=429))
                return self.reply(429, b'{"message":"Rate exceeded","Reason":"ACCOUNT_THROTTLED"}',
                                  [("x-amzn-ErrorType", "RequestThrottledException")])
            if fault == "throttle400":
                self.state.record(dict(entry, status=400))
                return self.reply(400, b'{"message":"Rate exceeded","Reason":"ACCOUNT_THROTTLED"}',
                                  [("x-amzn-ErrorType", "RequestThrottledException")])
            if fault == "503":
                self.state.record(dict(entry, status=503))
                return self.reply(503, b'{"message":"Service unavailable"}', [("x-amzn-ErrorType", "InternalServerException")])
            if fault == "reset":
                self.state.record(dict(entry, status="reset"))
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault == "403":
                self.state.record(dict(entry, status=403))
                return self.reply(403, b'{"message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ebs:StartSnapshot"}',
                                  [("x-amzn-ErrorType", "AccessDeniedException")])
            if fault == "slow":
                time.sleep(self.state.slow_seconds)
            conn = http.client.HTTPConnection("127.0.0.1", self.state.moto_port, timeout=120)
            headers = {k: v for k, v in self.headers.items()}
            conn.request(self.command, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            entry["status"] = response.status
            if op == "StartSnapshot" and response.status < 300:
                parent = json.loads(body or b"{}").get("ParentSnapshotId")
                if parent:
                    entry["parent"] = parent
                    entry["inheritedBlocks"] = inherit_blocks(self.state.moto_port, parent, json.loads(data)["SnapshotId"], headers)
            self.state.record(entry)
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date")]
            conn.close()
            return self.reply(response.status, data, out)
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def serve_main(args):
    # A test runner's worker thread may start this with signals blocked.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    from moto.server import ThreadedMotoServer
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    state = State(args)
    state.moto_port = moto.get_host_and_port()[1]
    Handler.state = state
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.daemon_threads = True
    proxy.request_queue_size = 256
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    with open(args.ready + ".tmp", "w") as f:
        json.dump({"proxy": proxy.server_address[1], "moto": state.moto_port}, f)
    import os
    os.rename(args.ready + ".tmp", args.ready)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))

    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            stop.set()
    if not args.no_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.5):
        pass
    # Threads may be mid-request; nothing is left to flush but the log.
    if state.log:
        state.log.flush()
    os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--ready", required=True)
    s.add_argument("--log")
    s.add_argument("--secret", action="append", default=[], help="ACCESSKEY=SECRET whose signatures are checked")
    s.add_argument("--fault", action="append", default=[], help="OPERATION:KIND:EVERY, KIND 429|throttle400|503|reset|slow|403")
    s.add_argument("--slow-seconds", type=float, default=3.0)
    s.add_argument("--delay", action="append", default=[], help="OPERATION:SECONDS before every such request")
    s.add_argument("--container-token", default="Bearer standin-container-token")
    s.add_argument("--standin-key", default="ASIASTANDIN")
    s.add_argument("--no-stdin", action="store_true")
    sub.add_parser("sign")
    args = parser.parse_args()
    if args.command == "sign":
        sign_main()
    else:
        serve_main(args)


if __name__ == "__main__":
    main()
