import ArgumentParser

struct Emit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Emit Karpenter or launch-template snippets that use a snapshot.")
    func run() async throws { throw CLIFailure.input("emit is not available yet") }
}
