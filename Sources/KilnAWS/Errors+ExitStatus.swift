import KilnCore

// Every AWS failure is an environment failure (exit 3): refusals, network, credentials.
extension AWSError: KilnError {
    public var exitStatus: ExitStatus { .environment }
}

extension CredentialChain.Error: KilnError {
    public var exitStatus: ExitStatus { .environment }
}

extension AWSEndpoint.Error: KilnError {
    public var exitStatus: ExitStatus { .input }
}
