import KilnCore
import Testing

@Suite("Repeated JSON keys")
struct JSONDuplicateKeysTests {
    @Test(arguments: [
        (#"{"a":1,"b":2}"#, nil),
        (#"{"a":1,"a":2}"#, "a"),
        (#" { "a" : 1 , "a" : 2 } "#, "a"),
        (#"{"x":{"y":[1,{"k":1,"k":2}]}}"#, "x.y[1].k"),
        (#"{"ab":1,"a\u0062":2}"#, "ab"),
        (#"{"a":"}\"{,\"a\":","a":3}"#, "a"),
        (#"[{"a":1},{"a":1}]"#, nil),
        (#"{"a":{"a":1},"b":[],"c":{}}"#, nil),
        (#"{"é":1,"\u00e9":2}"#, "é"),
        (#"{"\ud83d\ude00":1,"😀":2}"#, "😀"),
        (#"{"a":[[],[{}],{"b":null,"b":true}]}"#, "a[2].b"),
        (#"{"layers":[{"digest":"sha256:1"}],"config":{},"layers":[]}"#, "layers"),
        (#"{"A":1,"a":2}"#, nil),
    ] as [(String, String?)])
    func findsTheFirstRepeatedKey(document: String, expected: String?) {
        #expect(JSONDuplicateKeys.first(in: Array(document.utf8)) == expected)
    }

    @Test func deepNestingIsNotRecursion() {
        let depth = 100_000
        let doc = String(repeating: #"{"a":["#, count: depth) + String(repeating: "]}", count: depth)
        #expect(JSONDuplicateKeys.first(in: Array(doc.utf8)) == nil)
        let repeated = String(repeating: #"{"a":["#, count: depth) + #"{"z":1,"z":2}"# + String(repeating: "]}", count: depth)
        #expect(JSONDuplicateKeys.first(in: Array(repeated.utf8))?.hasSuffix("[0].z") == true)
    }
}
