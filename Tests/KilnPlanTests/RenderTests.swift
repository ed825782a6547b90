import Foundation
import KilnTestSupport
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import KilnPlan

/// The Chromium (or Chrome) binary, if one is installed.
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Counts pixels that differ from white and distinct colours in a PNG, decoding it with Python's zlib
/// (no imaging library needed). Prints "<width> <height> <non-white> <colours>".
let pngStats = #"""
    import sys, zlib, struct
    data = open(sys.argv[1], "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    nonwhite, colours, i = 0, set(), 0
    for y in range(h):
        f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 2):
            px = bytes(line[x:x + 3])
            colours.add(px)
            if px != b"\xff\xff\xff": nonwhite += 1
        prev = line
    print(w, h, nonwhite, len(colours))
    """#

@Suite("SVG and HTML timeline")
struct RenderTests {
    /// Planned once for all rendering tests.
    static let shared: PlanReport? = try? makeReport()

    static func report() throws -> PlanReport { try shared ?? makeReport() }

    static func makeReport() throws -> PlanReport {
        var input = PlannerTests.input(deadline: 720, nodes: 300)
        input.models = ModelSet(files: (0..<20).map { ModelSet.File(path: "shard-\($0)<&>.safetensors", bytes: 2_000_000_000 + UInt64($0) * 50_000_000) })
        input.schedule = .lpt
        input.efs = EFSLimits.defaults(mode: .elastic, readLimit: .gibPerSecond(20))
        return try Planner.plan(input)
    }

    final class ErrorCollector: NSObject, XMLParserDelegate, @unchecked Sendable {
        var error: Error?
        var elements = 0
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements += 1
        }
        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
    }

    @Test func svgIsWellFormedXML() throws {
        let svg = try Self.report().svg()
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = ErrorCollector()
        parser.delegate = collector
        #expect(parser.parse(), "\(String(describing: collector.error))")
        #expect(collector.elements > 100)
        #expect(svg.contains("shard-0&lt;&amp;&gt;.safetensors"))
    }

    /// Runs headless Chromium with a profile of its own (in `dir`); returns its exit status and standard output.
    func runChromium(_ arguments: [String], profileIn dir: TemporaryDirectory) throws -> (Int32, String) {
        let r = try ProcessRunner().run(chromiumPath ?? "/usr/bin/chromium", [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage",
            "--no-first-run", "--user-data-dir=" + dir.path("chromium-\(UUID().uuidString)"),
        ] + arguments)
        return (r.status, r.stdout)
    }

    @Test(.enabled(if: chromiumPath != nil, "chromium is not installed (apt-get install chromium)"),
          .enabled(if: (try? runPython("import zlib", input: ""))?.status == 0, "python3 is not installed"),
          arguments: ["svg", "html"])
    func rendersInChromium(format: String) throws {
        let report = try Self.report()
        let scratch = try TemporaryDirectory(prefix: "kiln-plan-render")
        defer { scratch.remove() }
        let dir = scratch.url
        let file = dir.appendingPathComponent("plan.\(format)")
        try Data((format == "svg" ? report.svg() : report.html()).utf8).write(to: file)

        // The browser's own parser must accept the document.
        let (dumpStatus, dom) = try runChromium(["--dump-dom", file.absoluteString], profileIn: scratch)
        #expect(dumpStatus == 0)
        #expect(!dom.contains("parsererror"), "chromium reports a parse error")
        #expect(dom.contains("polyline"))

        let png = dir.appendingPathComponent("shot.png")
        // Half scale keeps the pure-Python PNG decoding below fast; the layout is the same.
        let (status, _) = try runChromium(["--screenshot=" + png.path, "--window-size=1200,1600", "--force-device-scale-factor=0.5", file.absoluteString],
                                          profileIn: scratch)
        #expect(status == 0)
        #expect(FileManager.default.fileExists(atPath: png.path), "no screenshot")
        let result = try runPythonFile(pngStats, argument: png.path)
        let numbers = result.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(numbers.count == 4, "unexpected output: \(result)")
        #expect(numbers[0] >= 500 && numbers[1] >= 700, "screenshot is \(numbers[0])x\(numbers[1])")
        // Not blank: a good share of ink and many colours (lanes, bars, curves, text). Every other pixel of
        // a row is sampled.
        #expect(numbers[2] > 5_000, "only \(numbers[2]) non-white pixels")
        #expect(numbers[3] > 20, "only \(numbers[3]) colours")
    }

    /// Runs a python3 script with one argument; returns its standard output, then its standard error.
    func runPythonFile(_ script: String, argument: String) throws -> String {
        try ProcessRunner().run("python3", ["-c", script, argument]).output
    }
}
