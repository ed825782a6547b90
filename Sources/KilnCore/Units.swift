/// Byte multiples used throughout the planner.
///
/// AWS quotes EBS initialization rates and EFS limits in binary units (MiB/s, GiB/s) and prices in "GB",
/// which its billing treats as 2^30 bytes; sizes of files and images are often quoted in decimal units.
/// Keeping both spelled out avoids the classic napkin error of mixing them.
public enum Units {
    public static let kib = 1024.0
    public static let mib = 1024.0 * 1024.0
    public static let gib = 1024.0 * 1024.0 * 1024.0
    public static let tib = 1024.0 * 1024.0 * 1024.0 * 1024.0
    public static let kb = 1e3
    public static let mb = 1e6
    public static let gb = 1e9
    public static let tb = 1e12
}
