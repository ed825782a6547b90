/// The version of kiln, recorded in every manifest and printed by `kiln --version`.
public enum KilnVersion {
    public static let current = "0.1.0"
}
