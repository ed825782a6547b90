import ArgumentParser

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Plan how fast a fleet of new nodes gets ready.")
    func run() async throws { throw CLIFailure.input("plan is not available yet") }
}
