import ArgumentParser

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Verify images offline against their digests.")
    func run() async throws { throw CLIFailure.input("not yet") }
}
