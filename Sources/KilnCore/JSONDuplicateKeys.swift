/// Finds a key given twice in one JSON object.
///
/// JSON readers disagree on duplicates: Go's (containerd's) and Python's keep the last, Foundation's keeps the
/// first. A document that says two things must be refused, not read one way by kiln and another by the tools
/// that check its work. The scan is iterative (no recursion on input) and bounded by the input's length; it is
/// meant for documents a decoder has already accepted, and returns nil for anything it cannot tokenize.
public enum JSONDuplicateKeys {
    /// The path of the first key that repeats within its object (`blocks.checksum`, `layers[2].digest`), or nil.
    public static func first(in bytes: [UInt8]) -> String? {
        var scanner = Scanner(bytes: bytes)
        return scanner.run()
    }

    private struct Scanner {
        enum Frame {
            case object(keys: Set<[UInt8]>, current: [UInt8]?)
            case array(index: Int)
        }

        let bytes: [UInt8]
        var at = 0
        var stack: [Frame] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
        }

        /// A string's decoded UTF-8 bytes (escapes resolved), `at` past its closing quote.
        mutating func string() -> [UInt8]? {
            guard at < bytes.count, bytes[at] == 0x22 else { return nil }
            at += 1
            var out: [UInt8] = []
            var pendingHigh: UInt32? = nil
            while at < bytes.count {
                let b = bytes[at]
                at += 1
                if b == 0x22 { return out }
                guard b == 0x5C else {
                    out.append(b)
                    continue
                }
                guard at < bytes.count else { return nil }
                let e = bytes[at]
                at += 1
                switch e {
                case 0x22, 0x5C, 0x2F: out.append(e)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard at + 4 <= bytes.count, let unit = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else { return nil }
                    at += 4
                    var scalar: UInt32 = unit
                    if (0xD800..<0xDC00).contains(unit) {
                        pendingHigh = unit
                        continue
                    }
                    if (0xDC00..<0xE000).contains(unit), let high = pendingHigh {
                        scalar = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)
                    }
                    pendingHigh = nil
                    out.append(contentsOf: Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8))
                default: return nil
                }
            }
            return nil
        }

        func path() -> String {
            var out = ""
            for frame in stack {
                switch frame {
                case .object(_, let current):
                    if let current { out += (out.isEmpty ? "" : ".") + String(decoding: current, as: UTF8.self) }
                case .array(let index):
                    out += "[\(index)]"
                }
            }
            return out
        }

        mutating func run() -> String? {
            // A value is expected at `at`; after it, the enclosing frame decides what may follow.
            var expectValue = true
            while true {
                skipSpace()
                if expectValue {
                    guard at < bytes.count else { return nil }
                    switch bytes[at] {
                    case 0x7B:  // {
                        at += 1
                        skipSpace()
                        if at < bytes.count, bytes[at] == 0x7D {
                            at += 1
                            expectValue = false
                            if stack.isEmpty { return nil }
                            continue
                        }
                        stack.append(.object(keys: [], current: nil))
                        guard let duplicate = key() else { return nil }
                        if let duplicate { return duplicate }
                        continue
                    case 0x5B:  // [
                        at += 1
                        skipSpace()
                        if at < bytes.count, bytes[at] == 0x5D {
                            at += 1
                            expectValue = false
                            if stack.isEmpty { return nil }
                            continue
                        }
                        stack.append(.array(index: 0))
                        continue
                    case 0x22:
                        guard string() != nil else { return nil }
                    default:
                        // A number, true, false or null: up to the next delimiter.
                        while at < bytes.count, ![0x2C, 0x7D, 0x5D, 0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) { at += 1 }
                    }
                    expectValue = false
                    if stack.isEmpty { return nil }
                    continue
                }
                // After a value: a comma or the end of the enclosing object or array.
                guard at < bytes.count, let frame = stack.last else { return nil }
                let b = bytes[at]
                at += 1
                switch (frame, b) {
                case (.object, 0x2C):
                    guard let duplicate = key() else { return nil }
                    if let duplicate { return duplicate }
                    expectValue = true
                case (.array(let index), 0x2C):
                    stack[stack.count - 1] = .array(index: index + 1)
                    expectValue = true
                case (.object, 0x7D), (.array, 0x5D):
                    stack.removeLast()
                    if stack.isEmpty { return nil }
                default:
                    return nil
                }
            }
        }

        /// Reads `"key":` into the object on top of the stack: `.some(path)` when the key repeats, `.some(nil)`
        /// when it is new, nil when the bytes are not a key.
        mutating func key() -> String?? {
            skipSpace()
            guard let name = string(), case .object(var keys, _) = stack.last else { return nil }
            skipSpace()
            guard at < bytes.count, bytes[at] == 0x3A else { return nil }
            at += 1
            let repeated = !keys.insert(name).inserted
            stack[stack.count - 1] = .object(keys: keys, current: name)
            return .some(repeated ? path() : nil)
        }
    }
}
