"""A minimal CRI image client: pulls and lists images through containerd's CRI plugin, the way
kubelet does, so a comparison sees exactly what a node's image pull leaves behind.

Usage: containerd-cri.py SOCKET pull IMAGE...     prints "IMAGE -> image id" per image
       containerd-cri.py SOCKET list              prints "id repo_tags repo_digests size" per image
       containerd-cri.py SOCKET status IMAGE      prints the image record, or "absent"

The messages are encoded by hand (a few fields of runtime.v1's api.proto), so nothing but
grpcio (Debian package python3-grpcio) is needed: no generated stubs, no cri-tools.
"""
import sys

try:
    import grpc
except ImportError:
    sys.stderr.write("containerd-cri: python3-grpcio is missing (apt-get install python3-grpcio)\n")
    sys.exit(77)

SERVICE = "/runtime.v1.ImageService/"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def image_spec(name):
    # ImageSpec { string image = 1; }
    return field_bytes(1, name.encode())


def decode(buf):
    """Decodes one message into {field number: [values]} (bytes for length-delimited fields)."""
    fields = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 2:
            length, i = read_varint(buf, i)
            value = bytes(buf[i:i + length])
            i += length
        elif wire == 1:
            value = bytes(buf[i:i + 8])
            i += 8
        elif wire == 5:
            value = bytes(buf[i:i + 4])
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def image_record(raw):
    # Image { id = 1; repeated repo_tags = 2; repeated repo_digests = 3; uint64 size = 4; }
    f = decode(raw)
    return {
        "id": f.get(1, [b""])[0].decode(),
        "repo_tags": sorted(v.decode() for v in f.get(2, [])),
        "repo_digests": sorted(v.decode() for v in f.get(3, [])),
        "size": f.get(4, [0])[0],
    }


def call(channel, method, request, timeout=120):
    identity = lambda b: b  # noqa: E731 (raw bytes in and out)
    stub = channel.unary_unary(SERVICE + method, request_serializer=identity, response_deserializer=identity)
    return stub(request, timeout=timeout)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    socket, command, args = argv[1], argv[2], argv[3:]
    with grpc.insecure_channel("unix://" + socket) as channel:
        try:
            if command == "pull":
                for name in args:
                    # PullImageRequest { ImageSpec image = 1; }
                    reply = decode(call(channel, "PullImage", field_bytes(1, image_spec(name)), timeout=300))
                    print(f"{name} -> {reply.get(1, [b''])[0].decode()}")
            elif command == "list":
                reply = decode(call(channel, "ListImages", b""))
                for raw in reply.get(1, []):
                    r = image_record(raw)
                    print(r["id"], ",".join(r["repo_tags"]) or "-", ",".join(r["repo_digests"]) or "-", r["size"])
            elif command == "status" and len(args) == 1:
                reply = decode(call(channel, "ImageStatus", field_bytes(1, image_spec(args[0]))))
                if 1 not in reply:
                    print("absent")
                else:
                    r = image_record(reply[1][0])
                    print(r["id"], ",".join(r["repo_tags"]) or "-", ",".join(r["repo_digests"]) or "-", r["size"])
            else:
                sys.stderr.write(__doc__)
                return 2
        except grpc.RpcError as e:
            sys.stderr.write(f"containerd-cri: {command} failed: {e.code().name}: {e.details()}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
