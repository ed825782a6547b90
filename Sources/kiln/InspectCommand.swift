import ArgumentParser

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe images, volumes and manifests.")
    func run() async throws { throw CLIFailure.input("not yet") }
}
